"""Use cases of ingest: authenticate the caller (API key, optional signature, rate),
validate every event, publish them to `events.accepted` and answer only after the
broker acknowledged all of them; keep and tell each publisher the status of its own
events; issue, list and revoke the units' API keys."""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

import limits
import orjson
from faststream.kafka import KafkaBroker
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared import accepted, metrics
from shared.events import INBOUND_TYPES, InvalidEvent, parse_event, utc_now

from services.ingest import domain
from services.ingest.store import IngestStore

log = logging.getLogger("nqt.ingest")

BAD_TOKEN = 'Bearer error="invalid_token"'


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's unit, and what its key says about signing."""

    unit: str
    key_id: str | None = None  # None: a development key
    signing_secret: str | None = None
    require_signature: bool = False


class Guard:
    """What one ingest process keeps in memory to guard its endpoints: the requests per
    unit in a moving window (with N replicas the effective limit is N times the setting,
    as each replica counts only what it sees), and when it last pruned the webhook ids."""

    def __init__(self, rate: str):
        self.item = limits.parse(rate)
        self.window = domain.MovingWindow(limit=self.item.amount, seconds=self.item.get_expiry())
        self.pruned_at = float("-inf")  # when (monotonic) this process last pruned the webhook ids

    def admit(self, unit: str) -> None:
        """Count one request of `unit`; 429 with Retry-After when it is over its rate."""
        free_in = self.window.hit(unit, time.monotonic())
        if free_in is None:
            return
        wait = domain.retry_after(free_in)
        raise domain.RateLimited(f"unit {unit!r} may send {self.item}; retry in {wait} s", retry_after=wait)


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


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header; 401 when there is none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise domain.Unauthenticated("send 'Authorization: Bearer <API key>'", challenge='Bearer realm="nq-tracker"')
    return token.strip()


def unit_for_key(authorization: str | None, keys: dict[str, str]) -> str:
    """The unit a development API key belongs to; 401 for no key or an unknown one."""
    unit = keys.get(bearer_token(authorization))
    if unit is None:
        raise domain.Unauthenticated("unknown API key", challenge=BAD_TOKEN)
    return unit


async def authenticate(*, store: IngestStore, authorization: str | None, dev_keys: dict[str, str],
                       now: datetime) -> Caller:
    """The caller of a request: a development key, else an issued key that is neither
    revoked nor expired; 401 otherwise."""
    token = bearer_token(authorization)
    if token in dev_keys:
        return Caller(unit=dev_keys[token])
    key_id = domain.key_id_of(token)
    doc = await store.key(key_id) if key_id else None
    refusal = domain.key_refusal(doc, token, now)
    if refusal:
        raise domain.Unauthenticated(refusal, challenge=BAD_TOKEN)
    return Caller(unit=doc["unit"], key_id=key_id, signing_secret=doc.get("signing_secret"),
                  require_signature=bool(doc.get("require_signature")))


def verify_signature(*, caller: Caller, body: bytes, headers: Mapping[str, str]) -> str | None:
    """Check a Standard Webhooks signature over the raw body; the request's webhook-id when
    signed, None when unsigned and allowed to be. 401 for a bad, stale or missing one."""
    signed = domain.signature_headers(headers)
    if not signed:
        if caller.require_signature:
            raise domain.Unauthenticated("this API key requires signed requests (webhook-id, webhook-timestamp, "
                                         "webhook-signature)")
        return None
    if not caller.signing_secret:
        raise domain.Unauthenticated("the request is signed but its API key has no signing secret")
    try:
        Webhook(caller.signing_secret).verify(body, signed, json_parse=False)
    except WebhookVerificationError as err:  # bad signature, timestamp more than 5 minutes off, ...
        raise domain.Unauthenticated(f"bad signature: {err}") from err
    except ValueError as err:  # the library trips on garbage: no comma, not base64, not UTF-8
        raise domain.Unauthenticated("bad signature: malformed webhook-signature or body") from err
    return signed["webhook-id"]


async def unseen_webhook_id(*, store: IngestStore, guard: Guard, unit: str, webhook_id: str,
                            now: datetime) -> None:
    """401 when the unit already used this signed request's id (a replay)."""
    if time.monotonic() - guard.pruned_at > 60:  # opportunistic: no TTL indexes on FerretDB
        guard.pruned_at = time.monotonic()
        await store.forget_webhook_ids(seen_before=now - domain.WEBHOOK_ID_KEPT)
    if await store.webhook_id_seen(unit=unit, webhook_id=webhook_id):
        raise domain.Unauthenticated(f"webhook-id {webhook_id!r} was already used: a replayed request")


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
    sizes = [(i, accepted.size(event)) for i, event in enumerate(events)]
    oversized = [(i, size) for i, size in sizes if size > bounds.max_event_bytes]
    if oversized:
        raise domain.TooLarge(f"event {oversized[0][0]} is {oversized[0][1]} bytes serialised; at most "
                              f"{bounds.max_event_bytes} per event", errors=[
            {"index": i, "pointer": f"/{i}" if batch else "", "detail": f"{size} bytes; at most {bounds.max_event_bytes}"}
            for i, size in oversized])
    return events


def validate(body: bytes, *, unit: str, bounds: domain.Bounds, window: tuple[datetime, datetime]) -> list[Any]:
    """Parse one event or a batch of the caller's unit; all-or-nothing."""
    items, batch = decode(body, max_batch=bounds.max_batch)
    events = check(items, batch=batch, bounds=bounds, window=window)
    foreign = [(i, e.source) for i, e in enumerate(events) if e.source != unit]
    if foreign:
        i, source = foreign[0]
        raise domain.Forbidden(f"event {i} has source {source!r} but the API key belongs to {unit!r}",
                               errors=[{"index": i, "pointer": (f"/{i}" if batch else "") + "/source",
                                        "detail": "must equal the key's unit"} for i, _ in foreign])
    return events


async def submit(*, broker: KafkaBroker, topic: str, store: IngestStore, guard: Guard, term: Term, caller: Caller,
                 body: bytes, headers: Mapping[str, str], bounds: domain.Bounds, timeout_s: float) -> list[str]:
    """POST /v1/events once authenticated: signature, validation, then publish. A signed
    request's id is recorded only once Kafka acknowledged its events: a request cut short
    before (a 503, a crash) may be sent again as it was; after, it is a replay."""
    webhook_id = verify_signature(caller=caller, body=body, headers=headers)
    now = datetime.now(timezone.utc)
    events = validate(body, unit=caller.unit, bounds=bounds,
                      window=bounds.window(term_start=await term.start(store), now=now))
    if webhook_id is not None:
        await unseen_webhook_id(store=store, guard=guard, unit=caller.unit, webhook_id=webhook_id, now=now)
    for event in events:
        metrics.event("ingest", event.type, "received")
    ids = await publish(broker, topic, events, store=store, timeout_s=timeout_s)
    if webhook_id is not None:
        await remember_webhook_id(store=store, unit=caller.unit, webhook_id=webhook_id, now=now)
    return ids


async def remember_webhook_id(*, store: IngestStore, unit: str, webhook_id: str, now: datetime) -> None:
    """Record a signed request's id once its events are in Kafka. Two copies racing here have
    both published, which is harmless: the same events have one effect."""
    try:
        await store.remember_webhook_id(unit=unit, webhook_id=webhook_id, seen_at=now)
    except Exception:
        # Kafka has the events, so they are accepted; the id may then be used once more.
        log.exception("could not record webhook-id %r of %s", webhook_id, unit)


async def publish(broker: KafkaBroker, topic: str, events: list[Any], *, store: IngestStore,
                  timeout_s: float | None = None) -> list[str]:
    """Publish all events, wait for every acknowledgement (acks=all), then record them accepted."""
    try:
        await asyncio.wait_for(accepted.publish(broker, topic, events), timeout_s)
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


async def event_status(*, store: IngestStore, unit: str, event_id: str) -> dict:
    """The status of the caller's own event; 404 when the unit has no such event."""
    doc = await store.event(source=unit, event_id=event_id)
    if doc is None:
        raise domain.NotFound(f"unit {unit!r} has published no event with id {event_id!r}")
    return domain.view(doc)


# --- API keys (the `nqt keys` commands) ---------------------------------------------

async def issue_key(*, store: IngestStore, unit: str, expires_at: datetime | None, require_signature: bool,
                    now: datetime) -> tuple[dict, str, str | None]:
    """A new key for `unit`: its stored document, the key and the signing secret (given out once)."""
    key_id = secrets.token_hex(8)
    key = domain.make_key(key_id, secrets.token_urlsafe(32))
    # The signing secret is kept as it is: verifying an HMAC needs it (unlike the key, which
    # only has to be recognised). It is given out only with a key that asks for signing.
    signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode() if require_signature else None
    doc = {"_id": key_id, "key_id": key_id, "unit": unit, "hash": domain.hash_key(key), "created_at": now,
           "expires_at": expires_at, "revoked_at": None, "require_signature": require_signature,
           "signing_secret": signing_secret}
    await store.add_key(doc)
    return doc, key, signing_secret


async def revoke_key(*, store: IngestStore, key_id: str, now: datetime) -> dict | None:
    """Revoke a key for good; None when there is no such key."""
    return await store.revoke_key(key_id, at=now)


async def list_keys(*, store: IngestStore, unit: str | None = None) -> list[dict]:
    """The keys (of one unit), without their hashes or secrets."""
    return [{f: doc.get(f) for f in ("key_id", "unit", "created_at", "expires_at", "revoked_at", "require_signature")}
            for doc in await store.keys(unit)]
