"""Use cases of ingest: authenticate the caller, validate every event, publish them
to `events.accepted` and answer only after the broker acknowledged all of them;
keep and tell each publisher the status of its own events."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson
from faststream.kafka import KafkaBroker

from shared import accepted, metrics
from shared.events import INBOUND_TYPES, InvalidEvent, parse_event, utc_iso

from services.ingest import domain
from services.ingest.problems import ProblemError
from services.ingest.store import IngestStore

log = logging.getLogger("nqt.ingest")


def unit_for_key(authorization: str | None, keys: dict[str, str]) -> str:
    """The unit an API key belongs to; 401 for no key or an unknown one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "send 'Authorization: Bearer <API key>'",
                           headers={"WWW-Authenticate": 'Bearer realm="nq-tracker"'})
    unit = keys.get(token.strip())
    if unit is None:
        raise ProblemError(401, "unknown API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return unit


def validate(body: bytes, *, unit: str, max_batch: int) -> list[Any]:
    """Parse one event or a batch; all-or-nothing, every bad field named with a JSON pointer."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ProblemError(400, f"the body is not valid JSON: {err}") from err
    batch = isinstance(raw, list)
    items = raw if batch else [raw]
    if not items:
        raise ProblemError(422, "the batch is empty", errors=[{"pointer": "", "detail": "at least one event"}])
    if len(items) > max_batch:
        raise ProblemError(413, f"a batch holds at most {max_batch} events, got {len(items)}")
    events, errors = [], []
    for i, item in enumerate(items):
        prefix = f"/{i}" if batch else ""
        try:
            events.append(parse_event(item, allowed_types=INBOUND_TYPES))
        except InvalidEvent as err:
            errors += [{"index": i, "pointer": prefix + p.pointer, "code": p.code, "detail": p.message}
                       for p in err.problems]
    if errors:
        raise ProblemError(422, f"{len({e['index'] for e in errors})} of {len(items)} event(s) invalid; "
                                "nothing was published", errors=errors)
    foreign = [(i, e.source) for i, e in enumerate(events) if e.source != unit]
    if foreign:
        i, source = foreign[0]
        raise ProblemError(403, f"event {i} has source {source!r} but the API key belongs to {unit!r}",
                           errors=[{"index": i, "pointer": (f"/{i}" if batch else "") + "/source",
                                    "detail": "must equal the key's unit"} for i, _ in foreign])
    return events


async def publish(broker: KafkaBroker, topic: str, events: list[Any], *, store: IngestStore) -> list[str]:
    """Publish all events, wait for every acknowledgement (acks=all), then record them accepted."""
    try:
        await accepted.publish(broker, topic, events)
    except Exception as err:
        raise ProblemError(503, f"Kafka did not acknowledge the events ({type(err).__name__}); "
                                "it is safe to send the same events again", headers={"Retry-After": "1"}) from err
    for event in events:
        metrics.EVENTS.labels(service="ingest", type=event.type, outcome="accepted").inc()
    try:
        await store.record_accepted(events, accepted_at=utc_iso(datetime.now(timezone.utc)))
    except Exception:
        # Kafka has the events, so they are accepted (contract: 202 after the ack); their
        # outcome record creates the status document anyway, only "accepted" is missed.
        log.exception("could not record %d accepted event(s); their outcomes will", len(events))
    return [event.id for event in events]


async def record_outcome(*, store: IngestStore, outcome: dict) -> None:
    """Keep an outcome of the programs service as the status of the event it is about."""
    await store.record_outcome(outcome)
    metrics.EVENTS.labels(service="ingest", type=outcome.get("type") or "unknown", outcome=outcome["outcome"]).inc()


async def event_status(*, store: IngestStore, unit: str, event_id: str) -> dict:
    """The status of the caller's own event; 404 when the unit has no such event."""
    doc = await store.event(source=unit, event_id=event_id)
    if doc is None:
        raise ProblemError(404, f"unit {unit!r} has published no event with id {event_id!r}")
    return domain.view(doc)
