"""Subscribers and scheduled jobs of notify.

Each topic is read in batches (`consumer.apply_batch`): a record that cannot be handled is
decided (dead-lettered) once it failed the same way twice, an outage is waited out, and
the handlers below take one record at a time, so a batch read again sends nothing twice
(every notice is sent once, by its identity). Records are read through their models
(`shared.records`); a change is handled by its kind (`service.ON_CHANGE`), and a kind notify does
not know is refused at the door, dead-lettered with the reason."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import httpx
from faststream.kafka.annotations import KafkaMessage

from shared import consumer, kafka, metrics, records
from shared.clock import Clock
from shared.runtime import Runtime

from services.notify.service import Notifier, keep, kept

log = logging.getLogger("nqt.notify")
Handle = Callable[[Notifier, Any], Awaitable[None]]


def register(runtime: Runtime, group_id: str, notifier_for, clock: Clock) -> None:
    topics = runtime.settings.topics

    def subscribe(topic: str, role: str, read: Callable[[bytes], Any], handle: Handle):
        # A group per topic: consumers of one group on several topics rebalance each other on every join.
        async def on_records(msg: KafkaMessage) -> None:
            await consumer.apply_batch(runtime.broker, msg.raw_message, read=read,
                                    apply=lambda values: handle_each(notifier_for(runtime), role, values, handle))
        on_records.__name__ = on_records.__qualname__ = f"on_{role}"  # names the subscriber (logs, AsyncAPI)
        kafka.batch_subscriber(runtime, topic, group_id=f"{group_id}.{role}",
                               max_records=runtime.settings.notify_batch)(on_records)

    subscribe(topics.changes, "changes", read_change, lambda n, change: on_change(n, change, clock))
    subscribe(topics.outcomes, "outcomes", records.read_outcome, on_outcome)
    subscribe(topics.due, "due", records.read_due, lambda n, event: on_due(n, event, clock))
    subscribe(topics.generated, "generated", records.read_generated, lambda n, event: on_generated(n, event, clock))


async def handle_each(notifier: Notifier, role: str, values: list, handle: Handle) -> None:
    with metrics.HANDLER_SECONDS.labels(service="notify", handler=role).time():
        for value in values:
            await handle(notifier, value)


def read_change(value: bytes) -> records.Change:
    """A change of a kind notify knows (`service.ON_CHANGE`); Poison, with the reason, otherwise."""
    change = records.read_change(value)
    kept(change.kind)
    return change


async def on_change(notifier: Notifier, change: records.Change, clock: Clock) -> None:
    """Keep what the change says; a unit just known gets the notices that waited for it."""
    metrics.event("notify", f"change.{change.kind}", "received")
    await keep(store=notifier.store, change=change)
    if change.kind == records.UNIT:
        async with httpx.AsyncClient(timeout=60) as fetch:
            await notifier.recipient_known(change.state["code"], clock.today(), fetch)


# --- outcomes, cycles, reports ---
async def on_outcome(notifier: Notifier, outcome: records.Outcome) -> None:
    metrics.event("notify", outcome.type, outcome.outcome, outcome.code or "")
    if outcome.outcome == records.REJECTED:
        await notifier.rejection(outcome)


async def on_due(notifier: Notifier, event: records.ReportDue, clock: Clock) -> None:
    metrics.event("notify", "report.due", "received")
    await notifier.cycle_opened(event, clock.today())


async def on_generated(notifier: Notifier, event: records.ReportGenerated | records.ReportDrafted,
                       clock: Clock) -> None:
    if isinstance(event, records.ReportDrafted):
        metrics.event("notify", records.DRAFTED, "received")
        await notifier.report_drafted(event)
        return
    metrics.event("notify", records.GENERATED, "received")
    async with httpx.AsyncClient(timeout=60) as fetch:
        await notifier.report_generated(event, clock.today(), fetch)
