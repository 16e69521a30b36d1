"""Direct Kafka intake: systems that publish straight to `inbound.events` (contract
section 4), one structured-mode CloudEvent per record, as any CloudEvents SDK or
kcat writes it.

A record is validated exactly like HTTP input (the same checks of service.py: schema,
time window, size) and then stamped and published to `events.accepted` like an HTTP
event. What cannot be accepted raises a `kafka.Poison` subclass naming the reason:
the dead-letter middleware moves the bytes unchanged to `inbound.events.dlq` with
that reason in its headers, and the partition keeps moving.

Kafka carries no API key, so the `source` must be a unit of the registry. Ingest
keeps its own copy of the units, from the `programs.changes` records of kind
"unit" (a service owns its collections and reads no other's)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from shared import kafka, metrics
from shared.events import Envelope

from services.ingest import domain, service
from services.ingest.store import IngestStore

# The class name becomes the dead letter's `nqt-dlq-error-class` header, the message its
# `nqt-dlq-error-message`: an operator can tell the reasons apart without reading code.
class Refused(kafka.Poison):
    """An inbound record that can never be accepted."""


class TooLarge(Refused):
    pass


class Malformed(Refused):
    pass


class SchemaInvalid(Refused):
    pass


class UnknownUnit(Refused):
    pass


def parse(body: bytes, *, bounds: domain.Bounds, window: tuple[datetime, datetime]) -> Envelope:
    """One event from one record, validated like HTTP input; Refused naming what is wrong."""
    if len(body) > bounds.max_event_bytes:
        raise TooLarge(f"the record is {len(body)} bytes; at most {bounds.max_event_bytes} (ingest_max_event_bytes)")
    try:
        raw = orjson.loads(body)
    except ValueError as err:
        raise Malformed(f"not valid JSON: {err}") from err
    if isinstance(raw, list):
        raise Malformed("a JSON array is not accepted on Kafka: publish one event per record")
    try:
        [event] = service.check([raw], batch=False, bounds=bounds, window=window)
    except domain.TooLarge as err:
        raise TooLarge(f"{err.detail} (ingest_max_event_bytes)") from err
    except domain.InvalidEvents as err:
        raise SchemaInvalid("; ".join(f"{e['pointer'] or '/'}: {e['detail']} ({e['code']})"
                                      for e in err.errors)) from err
    return event


async def take_in(*, broker, topic: str, store: IngestStore, term: service.Term, bounds: domain.Bounds,
                  body: bytes) -> Envelope:
    """Validate one inbound record, publish it to `events.accepted` (acks=all), record it accepted."""
    window = bounds.window(term_start=await term.start(store), now=datetime.now(timezone.utc))
    event = parse(body, bounds=bounds, window=window)
    if not await store.unit_known(event.source):
        # Also when the unit was registered a moment ago and its "unit" change has not
        # reached ingest's copy yet: the dead letter can be replayed (`nqt dlq replay`).
        raise UnknownUnit(f"unknown unit {event.source!r} at /source: not in the registry")
    metrics.event("ingest", event.type, "received")
    # A crash after this publish and before the commit re-reads the record: programs then
    # answers `duplicate` for the second copy, as for an HTTP client that sent it twice.
    await service.publish(broker, topic, [event], store=store)
    return event
