"""Subscribers of notify."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared import kafka
from shared.runtime import Runtime

from services.notify import service
from services.notify.channels import Channel
from services.notify.store import NotifyStore


def _decode(msg: KafkaMessage) -> dict:
    try:
        value = kafka.loads(msg.body)
    except ValueError as err:
        raise kafka.Poison(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise kafka.Poison("not a JSON object")
    return value


def register(runtime: Runtime, group_id: str, channel: Channel, attempts: int) -> None:
    topics = runtime.settings.topics

    @runtime.broker.subscriber(topics.changes, group_id=group_id, ack_policy=kafka.COMMIT_AFTER_WRITE,
                               auto_offset_reset="earliest")
    async def on_change(msg: KafkaMessage) -> None:
        change = _decode(msg)
        if change.get("kind") == "unit":
            await NotifyStore(runtime.db).put_unit(change["state"])

    @runtime.broker.subscriber(topics.outcomes, group_id=group_id, ack_policy=kafka.COMMIT_AFTER_WRITE,
                               auto_offset_reset="earliest")
    async def on_outcome(msg: KafkaMessage) -> None:
        outcome = _decode(msg)
        if outcome.get("outcome") == "rejected":
            await service.notify_rejection(outcome=outcome, store=NotifyStore(runtime.db), channel=channel,
                                           attempts=attempts)
