"""Pure decisions of ingest about an event's status. No I/O here.

An event is `accepted` once Kafka has it, then gets one outcome from the programs
service. The first `applied`/`rejected` outcome of a key is its status for good. A
`duplicate` outcome is about a later submission of the same key: it is counted and
never hides the original's status (`accepted` while the original waits, e.g. for its
plan); it only shows as the status when ingest knows nothing else of the key (e.g.
the key was first published by another route).

It also decides about credentials: the form of an issued API key, whether a presented
key is good, and what a signed request must carry; and what the door admits beyond the
event schema: how many events, how large, and when they may have happened."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from standardwebhooks import Webhook


# --- what a use case refuses (app.py answers each with a problem document; Kafka intake
# dead-letters the record) ------------------------------------------------------------

class Refusal(Exception):
    """Why a use case did not do what it was asked; `errors` name each bad field (JSON pointers)."""

    def __init__(self, detail: str, *, errors: list[dict] | None = None):
        self.detail, self.errors = detail, errors or []
        super().__init__(detail)


class Malformed(Refusal):
    """Not JSON, or not events at all."""


class Unauthenticated(Refusal):
    """No key, a bad key, or a missing, bad, stale or replayed signature."""

    def __init__(self, detail: str, *, challenge: str | None = None):
        super().__init__(detail)
        self.challenge = challenge  # what a client should present instead (WWW-Authenticate)


class Forbidden(Refusal):
    """The caller may not speak for the event's unit."""


class NotFound(Refusal):
    pass


class TooLarge(Refusal):
    """Too many events, or an event too large to publish."""


class Unsupported(Refusal):
    """An upload that is not a spreadsheet ingest takes (not .xlsx, or with macros)."""


class InvalidEvents(Refusal):
    """Events that break the contract; nothing of the batch is published."""


class RateLimited(Refusal):
    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(Refusal):
    """Kafka did not acknowledge in time; the very same request may be sent again."""

    def __init__(self, detail: str, *, retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = retry_after


# --- event statuses ----------------------------------------------------------------------

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
SIGNATURE_TOLERANCE = timedelta(minutes=5)
WEBHOOK_ID_KEPT = 2 * SIGNATURE_TOLERANCE


def new_signing_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


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


def signed_id(signed: dict[str, str], body: bytes, candidates: list[str], *, at: datetime) -> str:
    """The webhook-id of a body signed the Standard Webhooks way with one of the `candidates` secrets, its
    timestamp within 5 minutes of `at`: the wall clock for a request, the broker's clock for a
    record read later. The library's own verify compares with the wall clock only, so this
    checks the time here and has the library make the signature to compare with."""
    missing = [name for name in SIGNATURE_HEADERS if not signed.get(name)]
    if missing:
        raise Unauthenticated(f"bad signature: no {', '.join(missing)}")
    try:
        sent_at = datetime.fromtimestamp(float(signed["webhook-timestamp"]), tz=timezone.utc)
        given = [base64.b64decode(sig.partition(",")[2]) for sig in signed["webhook-signature"].split(" ")
                 if sig.startswith("v1,")]
    except (ValueError, OverflowError, OSError) as err:  # not a number, not base64
        raise Unauthenticated("bad signature: malformed webhook-timestamp or webhook-signature") from err
    if abs(sent_at - at) > SIGNATURE_TOLERANCE:
        raise Unauthenticated(f"bad signature: message timestamp too {'old' if sent_at < at else 'new'} "
                              f"(more than 5 minutes from {at.isoformat(timespec='seconds')})")
    for secret in candidates:
        expected = signature(secret, signed["webhook-id"], sent_at, body).partition(",")[2]
        if any(hmac.compare_digest(base64.b64decode(expected), sig) for sig in given):
            return signed["webhook-id"]
    raise Unauthenticated("bad signature: no matching signature")


def signature(secret: str, webhook_id: str, sent_at: datetime, body: bytes) -> str:
    """The Standard Webhooks signature (`v1,<base64>`) of a body. The library signs text; a
    binary body (an uploaded spreadsheet) is signed as the standard defines it, over its bytes:
    the same HMAC, which for a UTF-8 body is exactly the library's."""
    try:
        return Webhook(secret).sign(webhook_id, sent_at, body.decode())
    except UnicodeDecodeError:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
        signed = f"{webhook_id}.{math.floor(sent_at.timestamp())}.".encode() + body
        return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signing_secrets(keys: list[dict], now: datetime) -> list[str]:
    """The signing secrets of a unit's issued keys that are neither revoked nor expired."""
    return [k["signing_secret"] for k in keys if k.get("signing_secret") and k.get("revoked_at") is None
            and (k.get("expires_at") is None or _aware(k["expires_at"]) > now)]


# --- what the door admits beyond the schema ------------------------------------------

@dataclass(frozen=True)
class Bounds:
    """Events per request, one event's serialised bytes, and the window its `time` must lie in."""

    max_batch: int
    max_event_bytes: int
    margin: timedelta   # how long before the term's start
    floor: datetime     # the earliest time while the registry's term is not known yet
    skew: timedelta     # how far past now a publisher's clock may run ahead
    timezone: str       # where the term's first day begins

    @classmethod
    def of(cls, settings) -> "Bounds":
        return cls(max_batch=settings.ingest_max_batch, max_event_bytes=settings.ingest_max_event_bytes,
                   margin=timedelta(days=settings.ingest_time_margin_days),
                   floor=settings.ingest_earliest_event_time,
                   skew=timedelta(seconds=settings.ingest_max_clock_skew_s), timezone=settings.timezone)

    def window(self, *, term_start: date | None, now: datetime) -> tuple[datetime, datetime]:
        """The earliest and the latest event time admitted at `now`."""
        if term_start is None:
            return self.floor, now + self.skew
        start = datetime.combine(term_start, time.min, tzinfo=ZoneInfo(self.timezone))
        try:
            return start - self.margin, now + self.skew
        except OverflowError:  # a term that starts in year 1: nothing is earlier
            return datetime.min.replace(tzinfo=timezone.utc), now + self.skew


def time_refusal(moment: datetime, window: tuple[datetime, datetime]) -> tuple[str, str] | None:
    """Why an event's time is refused, in Vietnamese and English (None: it lies in the window)."""
    earliest, latest = window
    if earliest <= moment <= latest:
        return None
    span = f"{earliest.isoformat(timespec='seconds')} .. {latest.isoformat(timespec='seconds')}"
    return (f"thời điểm sự kiện (time) phải nằm trong khoảng {span}: từ trước nhiệm kỳ đến hiện tại",
            f"the event time must lie in {span}: from before the term to now")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
