"""Direct Kafka intake: systems that publish straight to `inbound.events` (contract
section 4), one structured-mode CloudEvent per record, as any CloudEvents SDK or
kcat writes it.

A record is validated exactly like HTTP input (same size limit, same schema) and
then stamped and published to `events.accepted` like an HTTP event. What cannot
be accepted raises a `kafka.Poison` subclass naming the reason: the dead-letter
middleware moves the bytes unchanged to `inbound.events.dlq` with that reason in
its headers, and the partition keeps moving.

Kafka carries no API key, so the `source` must be a unit of the registry. Ingest
keeps its own copy of the units, from the `programs.changes` records of kind
"unit" (a service owns its collections and reads no other's)."""

from __future__ import annotations

import logging

import orjson
from pymongo.asynchronous.database import AsyncDatabase

from shared import accepted, kafka, metrics, mongo
from shared.events import INBOUND_TYPES, Envelope, InvalidEvent, parse_event, utc_now

from services.ingest.store import IngestStore

log = logging.getLogger("nqt.ingest.intake")

INTAKE_INDEXES: mongo.IndexSpec = {"units": []}  # keyed by unit code (_id): no further index
UNIT_FIELDS = ("code", "name", "kind", "parent")


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


class Units:
    """Ingest's copy of the registry's units."""

    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def put(self, state: dict) -> None:
        doc = {f: state.get(f) for f in UNIT_FIELDS}
        await self.db.units.update_one({"_id": state["code"]}, {"$set": doc}, upsert=True)

    async def known(self, code: str) -> bool:
        return await self.db.units.find_one({"_id": code}) is not None


def parse(body: bytes, *, max_bytes: int) -> Envelope:
    """One event from one record, validated like HTTP input; Refused naming what is wrong."""
    if len(body) > max_bytes:
        raise TooLarge(f"the record is {len(body)} bytes; at most {max_bytes} (ingest_max_body_bytes)")
    try:
        raw = orjson.loads(body)
    except ValueError as err:
        raise Malformed(f"not valid JSON: {err}") from err
    if isinstance(raw, list):
        raise Malformed("a JSON array is not accepted on Kafka: publish one event per record")
    try:
        return parse_event(raw, allowed_types=INBOUND_TYPES)
    except InvalidEvent as err:
        raise SchemaInvalid("; ".join(f"{p.pointer or '/'}: {p.message} ({p.code})" for p in err.problems)) from err


async def remember_unit(*, db: AsyncDatabase, state: dict) -> None:
    """Keep a unit of the registry, from a `programs.changes` record of kind "unit"."""
    await Units(db).put(state)


async def take_in(*, broker, topic: str, db: AsyncDatabase, body: bytes, max_bytes: int) -> Envelope:
    """Validate one inbound record, publish it to `events.accepted` (acks=all), record it accepted."""
    event = parse(body, max_bytes=max_bytes)
    if not await Units(db).known(event.source):
        # Also when the unit was registered a moment ago and its "unit" change has not
        # reached ingest's copy yet: the dead letter can be replayed (`nqt dlq replay`).
        raise UnknownUnit(f"unknown unit {event.source!r} at /source: not in the registry")
    metrics.event("ingest", event.type, "received")
    # A crash after this publish and before the commit re-reads the record: programs then
    # answers `duplicate` for the second copy, as for an HTTP client that sent it twice.
    await accepted.publish(broker, topic, [event])
    metrics.event("ingest", event.type, "published")
    try:
        await IngestStore(db).record_accepted([event], accepted_at=utc_now())
    except Exception:
        # Kafka has the event; its outcome creates the status document anyway (as for HTTP).
        log.exception("could not record event %s accepted; its outcome will", event.key)
    return event
