"""Use cases of ingest: validate every event a unit publishes (over HTTP or straight to
Kafka), publish them to `events.accepted` and answer only after the broker acknowledged
all of them; keep and tell each publisher the status of its own events. Who may publish
as which unit is services.ingest.access."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime, timezone
from typing import Any, Mapping

import orjson
from faststream.kafka import KafkaBroker

from shared import accepted, metrics
from shared.events import INBOUND_TYPES, InvalidEvent, parse_event, utc_now

from services.ingest import access, domain
from services.ingest.store import IngestStore

log = logging.getLogger("nqt.ingest")


class Term:
    """The term's start, as ingest's copy of the registry has it. Each process reads it again
    at most every REFRESH_S, not on every request; the process that reads the registry's
    changes is told at once."""

    REFRESH_S = 30.0

    def __init__(self):
        self.known: date | None = None
        self.read_at = float("-inf")  # monotonic

    async def start(self, store: IngestStore) -> date | None:
        if time.monotonic() - self.read_at > self.REFRESH_S:
            self.known, self.read_at = await store.term_start(), time.monotonic()
        return self.known

    async def remember(self, store: IngestStore, term: dict) -> None:
        """Keep the term of the registry's settings (a `programs.changes` record)."""
        await store.put_term(term)
        self.known = date.fromisoformat(term["start"]) if term.get("start") else None
        self.read_at = time.monotonic()


def decode(body: bytes, *, max_batch: int) -> tuple[list[Any], bool]:
    """The items of a request body and whether it is a batch; 400, 422 or 413 when it holds no events."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise domain.Malformed(f"the body is not valid JSON: {err}") from err
    batch = isinstance(raw, list)
    items = raw if batch else [raw]
    if not items:
        raise domain.InvalidEvents("the batch is empty", errors=[{"pointer": "", "detail": "at least one event"}])
    if len(items) > max_batch:
        raise domain.TooLarge(f"a batch holds at most {max_batch} events, got {len(items)}")
    return items, batch


def check(items: list[Any], *, batch: bool, bounds: domain.Bounds, window: tuple[datetime, datetime]) -> list[Any]:
    """Every item a valid event of its time window and small enough to publish; all or nothing,
    each bad field named with a JSON pointer (422), each oversized event by its index (413)."""
    events, errors = [], []
    for i, item in enumerate(items):
        prefix = f"/{i}" if batch else ""
        try:
            event = parse_event(item, allowed_types=INBOUND_TYPES)
        except InvalidEvent as err:
            errors += [{"index": i, "pointer": prefix + p.pointer, "code": p.code, "detail": p.message}
                       for p in err.problems]
            continue
        if refusal := domain.time_refusal(event.time, window):
            vi, en = refusal
            errors.append({"index": i, "pointer": f"{prefix}/time", "code": "time_out_of_range", "detail": en,
                           "detail_vi": vi})
        events.append(event)
    if errors:
        raise domain.InvalidEvents(f"{len({e['index'] for e in errors})} of {len(items)} event(s) invalid; "
                                   "nothing was published", errors=errors)
    limit = bounds.max_event_bytes
    oversized = [(i, size) for i, event in enumerate(events) if (size := accepted.size(event)) > limit]
    if oversized:
        first, size = oversized[0]
        raise domain.TooLarge(f"event {first} is {size} bytes serialised; at most {limit} per event",
                              errors=[{"index": i, "pointer": f"/{i}" if batch else "",
                                       "detail": f"{n} bytes; at most {limit}"} for i, n in oversized])
    return events


def validate(body: bytes, *, unit: str, bounds: domain.Bounds, window: tuple[datetime, datetime]) -> list[Any]:
    """Parse one event or a batch of the caller's unit; all-or-nothing."""
    items, batch = decode(body, max_batch=bounds.max_batch)
    return admit(items, batch=batch, unit=unit, bounds=bounds, window=window)


def admit(items: list[Any], *, batch: bool, unit: str, bounds: domain.Bounds,
          window: tuple[datetime, datetime]) -> list[Any]:
    """Every item a valid event of the caller's unit (`check`), or nothing; whatever the items came from."""
    events = check(items, batch=batch, bounds=bounds, window=window)
    foreign = [(i, e.source) for i, e in enumerate(events) if e.source != unit]
    if foreign:
        i, source = foreign[0]
        raise domain.Forbidden(f"event {i} has source {source!r} but the API key belongs to {unit!r}",
                               errors=[{"index": i, "pointer": (f"/{i}" if batch else "") + "/source",
                                        "detail": "must equal the key's unit"} for i, _ in foreign])
    return events


async def submit(*, broker: KafkaBroker, topic: str, store: IngestStore, guard: access.Guard, term: Term,
                 caller: access.Caller, body: bytes, headers: Mapping[str, str], bounds: domain.Bounds,
                 timeout_s: float) -> list[str]:
    """POST /v1/events once authenticated: signature, validation, then publish."""
    webhook_id = access.verify_signature(caller=caller, body=body, headers=headers)
    now = datetime.now(timezone.utc)
    events = validate(body, unit=caller.unit, bounds=bounds,
                      window=bounds.window(term_start=await term.start(store), now=now))
    return await publish_signed(broker, topic, events, store=store, guard=guard, unit=caller.unit,
                                webhook_id=webhook_id, now=now, timeout_s=timeout_s)


async def publish_signed(broker: KafkaBroker, topic: str, events: list[Any], *, store: IngestStore,
                         guard: access.Guard, unit: str, webhook_id: str | None, now: datetime,
                         timeout_s: float) -> list[str]:
    """Publish a request's valid events. A signed request's id is recorded only once Kafka
    acknowledged its events: a request cut short before (a 503, a crash) may be sent again
    as it was; after, it is a replay."""
    if webhook_id is not None:
        await access.unseen_webhook_id(store=store, guard=guard, unit=unit, webhook_id=webhook_id, now=now)
    ids = await publish(broker, topic, events, store=store, timeout_s=timeout_s)
    if webhook_id is not None:
        await access.remember_webhook_id(store=store, unit=unit, webhook_id=webhook_id, now=now)
    return ids


async def publish(broker: KafkaBroker, topic: str, events: list[Any], *, store: IngestStore,
                  timeout_s: float | None = None, accept_id: str | None = None) -> list[str]:
    """Publish all events, wait for every acknowledgement (acks=all), then record them accepted.
    `accept_id`: of a single event taken in again after a crash, the same acceptance as before."""
    for event in events:
        metrics.event("ingest", event.type, "received")
    try:
        await asyncio.wait_for(accepted.publish(broker, topic, events, accept_id=accept_id), timeout_s)
    except Exception as err:
        # Nothing is claimed accepted. The producer may still deliver what it sent, which is
        # harmless: the same (source, id) sent again has one effect.
        why = f"no acknowledgement within {timeout_s} s" if isinstance(err, TimeoutError) else type(err).__name__
        raise domain.Unavailable(f"Kafka did not acknowledge the events ({why}); "
                                 "it is safe to send the same events again") from err
    for event in events:
        metrics.event("ingest", event.type, "published")
    try:
        await store.record_accepted(events, accepted_at=utc_now())
    except Exception:
        # Kafka has the events, so they are accepted (contract: 202 after the ack); their
        # outcome record creates the status document anyway, only "accepted" is missed.
        log.exception("could not record %d accepted event(s); their outcomes will", len(events))
    return [event.id for event in events]


async def record_outcome(*, store: IngestStore, outcome: dict) -> None:
    """Keep an outcome of the programs service as the status of the event it is about."""
    await store.record_outcome(outcome)
    metrics.event("ingest", outcome.get("type"), outcome["outcome"], outcome.get("code", ""))


INDICATOR_FIELDS = ("name", "measure", "responsible_unit")  # what the indicators template shows


async def keep_change(*, store: IngestStore, term: Term, change: dict) -> None:
    """Keep what ingest needs of a `programs.changes` record: a unit (who may publish on Kafka),
    the term (bounds an event's time), and what a unit's templates are pre-filled with
    (programmes, indicators, the tasks each unit leads). Other kinds are not its concern."""
    kind, state = change["kind"], change["state"]
    if kind == "unit":
        await store.put_unit(state)
    elif kind == "settings":
        await term.remember(store, state.get("term") or {})
    elif kind == "programme":
        await store.put_entry("programmes", state["code"], {"title": state.get("title")})
    elif kind == "indicator":
        await store.put_entry("indicators", state["code"], {f: state.get(f) for f in INDICATOR_FIELDS})
    elif kind == "task":
        await store.put_task(change["id"], int(change.get("seq") or 0), state)


async def keep_cycle(*, store: IngestStore, due: dict) -> None:
    """Keep a cycle that opened (`reports.due`): the unit report template names the open one."""
    await store.put_cycle(due)


async def event_status(*, store: IngestStore, unit: str, event_id: str) -> dict:
    """The status of the caller's own event; 404 when the unit has no such event."""
    doc = await store.event(source=unit, event_id=event_id)
    if doc is None:
        raise domain.NotFound(f"unit {unit!r} has published no event with id {event_id!r}")
    return domain.view(doc)


