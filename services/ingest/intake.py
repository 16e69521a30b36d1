"""Direct Kafka intake: systems that publish straight to `inbound.events` (contract
section 4), one structured-mode CloudEvent per record, as any CloudEvents SDK or
kcat writes it, signed the Standard Webhooks way in the record's headers.

Kafka carries no API key, so a record proves who is speaking by its signature: made
over the record value with the signing secret of one of its `source` unit's keys
(the same scheme as a signed HTTP request; services.ingest.access), its timestamp
within 5 minutes of when the broker appended the record, its `webhook-id` not used
by that unit before on another record or request. The unit must be in ingest's copy
of the registry. Then the record is validated and published exactly like HTTP input
(services.ingest.service), under an acceptance id derived from where the record is,
so a record taken in again after a crash is the same acceptance, not a duplicate.

What cannot be accepted raises a `consumer.Poison` subclass naming the reason: the
dead-letter middleware moves the bytes unchanged to `inbound.events.dlq` with that
reason in its headers, and the partition keeps moving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from shared import accepted, consumer
from shared.events import Envelope

from services.ingest import access, domain, service
from services.ingest.store import IngestStore

LOG_APPEND_TIME = 1  # a record's timestamp_type when the topic stamps the broker's clock


# The class name becomes the dead letter's `nqt-dlq-error-class` header, the message its
# `nqt-dlq-error-message`: an operator can tell the reasons apart without reading code.
class Refused(consumer.Poison):
    """An inbound record that can never be accepted."""


class TooLarge(Refused):
    pass


class Malformed(Refused):
    pass


class SchemaInvalid(Refused):
    pass


class UnknownUnit(Refused):
    pass


class Unauthenticated(Refused):
    pass


@dataclass(frozen=True)
class Record:
    """What intake reads of an `inbound.events` record."""

    where: str              # topic:partition:offset
    value: bytes
    headers: dict[str, str]
    appended_at: datetime | None  # the broker's clock (LogAppendTime), else unknown

    @classmethod
    def of(cls, record) -> "Record":
        """From an aiokafka ConsumerRecord."""
        headers = {k.lower(): v.decode("utf-8", "replace") for k, v in (record.headers or ())}
        appended = (datetime.fromtimestamp(record.timestamp / 1000, tz=timezone.utc)
                    if record.timestamp_type == LOG_APPEND_TIME else None)
        return cls(f"{record.topic}:{record.partition}:{record.offset}", record.value or b"", headers, appended)


@dataclass(frozen=True)
class Door:
    """What intake needs besides the record: the bounds, the term, the guard (pruning of the
    signed ids) and the development signing secrets."""

    bounds: domain.Bounds
    term: service.Term
    guard: access.Guard
    dev_secrets: dict[str, str]


async def take_in(*, broker, topic: str, store: IngestStore, door: Door, record: Record) -> Envelope:
    """Authenticate one inbound record, validate it, publish it to `events.accepted` (acks=all)
    and record it accepted; Refused (a dead letter) when it cannot be."""
    now = datetime.now(timezone.utc)
    raw = _decode(record.value, door.bounds)
    source = raw.get("source")
    if not isinstance(source, str):
        raise SchemaInvalid("/source: the publishing unit's code is required, to check the signature with")
    if not await store.unit_known(source):
        # Also when the unit was registered a moment ago and its "unit" change has not
        # reached ingest's copy yet: the dead letter can be replayed (`nqt dlq replay`).
        raise UnknownUnit(f"unknown unit {source!r} at /source: not in the registry")
    try:
        # A topic without LogAppendTime (created before) falls back to the wall clock.
        webhook_id = await access.verify_record(store=store, unit=source, headers=record.headers, value=record.value,
                                                at=record.appended_at or now, dev_secrets=door.dev_secrets, now=now)
        await access.unseen_webhook_id(store=store, guard=door.guard, unit=source, webhook_id=webhook_id, now=now,
                                       record=record.where)
        window = door.bounds.window(term_start=await door.term.start(store), now=now)
        [event] = service.check([raw], batch=False, bounds=door.bounds, window=window)
    except domain.Unauthenticated as err:
        raise Unauthenticated(err.detail) from err
    except domain.TooLarge as err:
        raise TooLarge(f"{err.detail} (ingest_max_event_bytes)") from err
    except domain.InvalidEvents as err:
        raise SchemaInvalid("; ".join(f"{e['pointer'] or '/'}: {e['detail']} ({e['code']})"
                                      for e in err.errors)) from err
    # Not a Refusal: Kafka not acknowledging is retried (the subscriber rewinds), then dead-lettered.
    await service.publish(broker, topic, [event], store=store, accept_id=accepted.accept_id_of(record.where))
    await access.remember_webhook_id(store=store, unit=source, webhook_id=webhook_id, now=now, record=record.where)
    return event


def _decode(value: bytes, bounds: domain.Bounds) -> dict:
    if len(value) > bounds.max_event_bytes:
        raise TooLarge(f"the record is {len(value)} bytes; at most {bounds.max_event_bytes} (ingest_max_event_bytes)")
    try:
        raw = orjson.loads(value)
    except ValueError as err:
        raise Malformed(f"not valid JSON: {err}") from err
    if isinstance(raw, list):
        raise Malformed("a JSON array is not accepted on Kafka: publish one event per record")
    if not isinstance(raw, dict):
        raise Malformed("a record holds one CloudEvent, a JSON object")
    return raw
