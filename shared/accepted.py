"""The record format on `events.accepted`: the validated envelope plus two
CloudEvents extension attributes stamped by ingest (or `nqt registry load`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

from shared import kafka
from shared.events import Envelope, parse_event, partition_key, utc_iso

ACCEPTED_TIME = "nqtacceptedtime"
ACCEPT_ID = "nqtacceptid"


def stamp(event: Envelope, *, now: datetime | None = None) -> tuple[str, bytes]:
    """Key and value of the accepted record. Each acceptance gets its own id, so a
    re-sent event is told apart from a redelivered record."""
    body = event.model_dump(mode="json", exclude_none=True)
    body[ACCEPTED_TIME] = utc_iso(now or datetime.now(timezone.utc))
    body[ACCEPT_ID] = uuid.uuid4().hex
    return partition_key(event), kafka.dumps(body)


def read(value: bytes) -> tuple[Envelope, str, str]:
    """Envelope, acceptance time and acceptance id of an accepted record."""
    raw = kafka.loads(value)
    accepted_at, accept_id = raw.get(ACCEPTED_TIME), raw.get(ACCEPT_ID)
    if not accepted_at or not accept_id:
        raise ValueError(f"record lacks {ACCEPTED_TIME}/{ACCEPT_ID}: not stamped by ingest")
    return parse_event(raw), accepted_at, accept_id


async def publish(broker, topic: str, events: list[Envelope]) -> None:
    """Publish stamped events and wait until the broker acknowledged every one (acks=all)."""
    sends = []
    for event in events:
        key, value = stamp(event)
        sends.append(await broker.publish(value, topic, key=key.encode(), no_confirm=True))
    await asyncio.gather(*sends)
