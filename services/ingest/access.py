"""Who may speak to ingest, and as which unit: API keys (a development map, or keys
issued per unit of which only a hash is kept), the Standard Webhooks signature of a
request or of a Kafka record, the signed ids already used (no replays), and each
unit's rate. Refusals are domain errors (services.ingest.domain)."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

import limits

from shared import ratelimit

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
        self.window = ratelimit.MovingWindow(limit=self.item.amount, seconds=self.item.get_expiry())
        self.pruned_at = float("-inf")  # when (monotonic) this process last pruned the webhook ids

    def admit(self, unit: str) -> None:
        """Count one request of `unit`; 429 with Retry-After when it is over its rate."""
        free_in = self.window.hit(unit, time.monotonic())
        if free_in is None:
            return
        wait = ratelimit.retry_after(free_in)
        raise domain.RateLimited(f"unit {unit!r} may send {self.item}; retry in {wait} s", retry_after=wait)


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
                       dev_secrets: dict[str, str], now: datetime) -> Caller:
    """The caller of a request: a development key (signing with its unit's development secret,
    if it has one), else an issued key that is neither revoked nor expired; 401 otherwise."""
    token = bearer_token(authorization)
    if token in dev_keys:
        return Caller(unit=dev_keys[token], signing_secret=dev_secrets.get(dev_keys[token]))
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
    return domain.signed_id(signed, body, [caller.signing_secret], at=datetime.now(timezone.utc))


async def verify_record(*, store: IngestStore, unit: str, headers: Mapping[str, str], value: bytes,
                        at: datetime, dev_secrets: dict[str, str], now: datetime) -> str:
    """The webhook-id of a Kafka record signed with the secret of one of its unit's keys that
    are in force (or the unit's development secret), its timestamp within 5 minutes of `at`
    (when the broker appended it); 401 otherwise."""
    signed = domain.signature_headers(headers)
    if not signed:
        raise domain.Unauthenticated("unsigned: a record on inbound.events carries webhook-id, webhook-timestamp "
                                     "and webhook-signature")
    secrets_in_force = domain.signing_secrets(await store.keys(unit), now)
    if unit in dev_secrets:
        secrets_in_force.append(dev_secrets[unit])
    if not secrets_in_force:
        raise domain.Unauthenticated(f"unit {unit!r} has no key with a signing secret "
                                     "(nqt keys issue UNIT --require-signature)")
    return domain.signed_id(signed, value, secrets_in_force, at=at)


async def unseen_webhook_id(*, store: IngestStore, guard: Guard, unit: str, webhook_id: str, now: datetime,
                            record: str | None = None) -> None:
    """401 when the unit already used this id on another request or record (a replay). The same
    Kafka `record` (topic:partition:offset) read again after a crash is no replay."""
    if time.monotonic() - guard.pruned_at > 60:  # opportunistic: no TTL indexes on FerretDB
        guard.pruned_at = time.monotonic()
        await store.forget_webhook_ids(seen_before=now - domain.WEBHOOK_ID_KEPT)
    used = await store.webhook_id_use(unit=unit, webhook_id=webhook_id)
    if used is not None and (record is None or used.get("record") != record):
        raise domain.Unauthenticated(f"webhook-id {webhook_id!r} was already used: a replayed "
                                     f"{'record' if record else 'request'}")


async def remember_webhook_id(*, store: IngestStore, unit: str, webhook_id: str, now: datetime,
                              record: str | None = None) -> None:
    """Record a signed request's (or record's) id once its events are in Kafka. Two copies
    racing here have both published, which is harmless: the same events have one effect."""
    try:
        await store.remember_webhook_id(unit=unit, webhook_id=webhook_id, seen_at=now, record=record)
    except Exception:
        # Kafka has the events, so they are accepted; the id may then be used once more.
        log.exception("could not record webhook-id %r of %s", webhook_id, unit)


# --- API keys (the `nqt keys` commands) ---------------------------------------------

async def issue_key(*, store: IngestStore, unit: str, expires_at: datetime | None, require_signature: bool,
                    now: datetime) -> tuple[dict, str, str | None]:
    """A new key for `unit`: its stored document, the key and the signing secret (given out once)."""
    key_id = secrets.token_hex(8)
    key = domain.make_key(key_id, secrets.token_urlsafe(32))
    # The signing secret is kept as it is: verifying an HMAC needs it (unlike the key, which
    # only has to be recognised). It is given out only with a key that asks for signing.
    signing_secret = domain.new_signing_secret() if require_signature else None
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
