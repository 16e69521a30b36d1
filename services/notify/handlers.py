"""Subscribers of notify."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import kafka
from shared.runtime import Runtime

from services.notify import service
from services.notify.channels import Channel
from services.notify.store import NotifyStore


def register(runtime: Runtime, group_id: str, channel: Channel, attempts: int) -> None:
    topics = runtime.settings.topics

    @runtime.broker.subscriber(topics.changes, group_id=group_id, ack_policy=kafka.COMMIT_AFTER_WRITE,
                               auto_offset_reset="earliest")
    async def on_change(msg: KafkaMessage) -> None:
        change = kafka.record(msg.body)
        if change.get("kind") == "unit":
            await NotifyStore(runtime.db).put_unit(change["state"])

    @runtime.broker.subscriber(topics.outcomes, group_id=group_id, ack_policy=kafka.COMMIT_AFTER_WRITE,
                               auto_offset_reset="earliest")
    async def on_outcome(msg: KafkaMessage) -> None:
        outcome = kafka.record(msg.body)
        if outcome.get("outcome") == "rejected":
            await service.notify_rejection(outcome=outcome, store=NotifyStore(runtime.db), channel=channel,
                                           attempts=attempts)
