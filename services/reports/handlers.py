"""Subscribers of the reports service."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import kafka, metrics
from shared.runtime import Runtime

from services.reports.store import ReportsStore


def register(runtime: Runtime, group_id: str) -> None:
    @runtime.broker.subscriber(runtime.settings.topics.changes, group_id=group_id,
                               ack_policy=kafka.COMMIT_AFTER_WRITE, auto_offset_reset="earliest")
    async def on_change(msg: KafkaMessage) -> None:
        try:
            change = kafka.loads(msg.body)
            change["kind"], change["id"], change["state"]
        except (ValueError, KeyError, TypeError) as err:
            raise kafka.Poison(f"not a change record: {err!r}") from err
        with metrics.HANDLER_SECONDS.labels(service="reports", handler="changes").time():
            await ReportsStore(runtime.db).apply_change(change)
