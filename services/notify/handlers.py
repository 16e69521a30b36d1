"""Subscribers and scheduled jobs of notify."""

from __future__ import annotations

import logging

import httpx
from faststream.kafka.annotations import KafkaMessage

from shared import kafka, metrics
from shared.clock import Clock
from shared.runtime import Runtime


log = logging.getLogger("nqt.notify")


def register(runtime: Runtime, group_id: str, notifier_for, clock: Clock) -> None:
    topics = runtime.settings.topics

    def subscriber(topic: str, role: str):
        # A group per topic: consumers of one group on several topics rebalance each other on every join.
        return runtime.broker.subscriber(topic, group_id=f"{group_id}.{role}", ack_policy=kafka.COMMIT_AFTER_WRITE,
                                         auto_offset_reset="earliest")

    def timed(role: str):
        return metrics.HANDLER_SECONDS.labels(service="notify", handler=role).time()

    @subscriber(topics.changes, "changes")
    async def on_change(msg: KafkaMessage) -> None:
        change = kafka.record(msg.body, required=("kind", "id", "state"))
        metrics.event("notify", f"change.{change['kind']}", "received")
        store = notifier_for(runtime).store
        with timed("changes"):
            if change["kind"] in ("unit", "settings"):
                await store.put_registry(change["kind"], change["state"])
            elif change["kind"] == "task":
                await store.put_task(change["id"], change["seq"], change["state"])
            elif change["kind"] == "unit_report":
                await store.put_unit_report(change["state"]["unit"], change["state"]["cycle"])

    @subscriber(topics.outcomes, "outcomes")
    async def on_outcome(msg: KafkaMessage) -> None:
        outcome = kafka.record(msg.body, required=("outcome", "source", "event_key"))
        metrics.event("notify", outcome.get("type"), outcome["outcome"], outcome.get("code", ""))
        if outcome["outcome"] == "rejected":
            with timed("outcomes"):
                await notifier_for(runtime).rejection(outcome)

    @subscriber(topics.due, "due")
    async def on_due(msg: KafkaMessage) -> None:
        event = kafka.record(msg.body, required=("cycle", "due_date", "expected_units", "window"))
        metrics.event("notify", "report.due", "received")
        with timed("due"):
            await notifier_for(runtime).cycle_opened(event, clock.today())

    @subscriber(topics.generated, "generated")
    async def on_generated(msg: KafkaMessage) -> None:
        event = kafka.record(msg.body, required=("cycle", "number", "formats"))
        metrics.event("notify", "report.generated", "received")
        with timed("generated"):
            async with httpx.AsyncClient(timeout=60) as fetch:
                await notifier_for(runtime).report_generated(event, clock.today(), fetch)

