"""Pure decisions of ingest about an event's status. No I/O here.

An event is `accepted` once Kafka has it, then gets one outcome from the programs
service. The first `applied`/`rejected` outcome of a key is its status for good. A
`duplicate` outcome is about a later submission of the same key: it is counted and
never hides the original's status (`accepted` while the original waits, e.g. for its
plan); it only shows as the status when ingest knows nothing else of the key (e.g.
the key was first published by another route).

It also decides about credentials: the form of an issued API key, whether a presented
key is good, and what a signed request must carry."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

ACCEPTED, APPLIED, DUPLICATE, REJECTED = "accepted", "applied", "duplicate", "rejected"
FINAL = (APPLIED, DUPLICATE, REJECTED)
OPTIONAL = ("decided_at", "code", "message_vi", "message_en", "findings")


def replaceable(outcome: str) -> tuple[str | None, ...]:
    """The statuses that `outcome` may replace (None: no status recorded yet)."""
    if outcome == DUPLICATE:
        return (None,)
    return (None, ACCEPTED, DUPLICATE)


def view(doc: dict) -> dict:
    """The answer to the publisher: its event's status, what decided it, and repeats."""
    duplicates = len(doc.get("duplicate_accept_ids", ()))
    status = doc.get("status") or (DUPLICATE if duplicates else ACCEPTED)
    body = {"id": doc["id"], "source": doc["source"], "type": doc.get("type"), "status": status,
            "accepted_at": doc.get("accepted_at")}
    body |= {f: doc[f] for f in OPTIONAL if doc.get(f) is not None}
    return body | {"duplicates": duplicates}


# --- credentials: API keys issued per unit, signed requests ---------------------------

KEY_PREFIX = "nqt"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# A signature's timestamp may be 5 minutes off (Standard Webhooks' tolerance), so an id seen
# at T can only be replayed successfully until T + 10 minutes: that is how long it is kept.
WEBHOOK_ID_KEPT = timedelta(minutes=10)


def make_key(key_id: str, secret: str) -> str:
    """`nqt_<key_id>_<secret>`: the key id is readable, so a key is found without a scan."""
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def key_id_of(token: str) -> str | None:
    """The key id inside an issued key, or None when `token` does not look like one."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not secret or not (0 < len(key_id) <= 64 and key_id.isalnum()):
        return None
    return key_id


def hash_key(token: str) -> str:
    # A plain SHA-256 is enough here: an issued key carries 256 random bits, so neither a
    # dictionary nor brute force can invert the hash. Slow hashes (bcrypt, argon2) protect
    # low-entropy human passwords and would only add milliseconds to every request.
    return hashlib.sha256(token.encode()).hexdigest()


def key_refusal(doc: dict | None, token: str, now: datetime) -> str | None:
    """Why a presented key is refused (None: it is good). Revocation and expiry are only
    told to the holder of the real key, after its hash matched."""
    if doc is None or not hmac.compare_digest(doc.get("hash", ""), hash_key(token)):
        return "unknown API key"
    if doc.get("revoked_at") is not None:
        return f"the API key {doc['_id']} was revoked"
    expires_at = doc.get("expires_at")
    if expires_at is not None and _aware(expires_at) <= now:
        return f"the API key {doc['_id']} expired at {_aware(expires_at).isoformat()}"
    return None


def end_of_day(day: date, tz: str) -> datetime:
    """`--expires 2026-12-31`: the key works through that whole day, in the service's time zone."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def signature_headers(headers) -> dict[str, str]:
    """The Standard Webhooks headers a request carries (any of them makes it a signed request)."""
    return {name: headers[name] for name in SIGNATURE_HEADERS if headers.get(name) is not None}


class MovingWindow:
    """At most `limit` hits per key in any `seconds`: each key keeps the times of its hits
    still inside the window (at most `limit`), so a hit costs no thread and no timer."""

    def __init__(self, *, limit: int, seconds: float):
        self.limit, self.seconds = limit, seconds
        self.hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float) -> float | None:
        """Count a hit at `now` (monotonic seconds); None when admitted, else the seconds
        until a slot frees (a refused hit is not counted)."""
        hits = self.hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            return None
        return hits[0] + self.seconds - now


def retry_after(seconds: float) -> int:
    """The Retry-After for a slot that frees in `seconds`: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
