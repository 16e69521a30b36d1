"""Which unit an API key belongs to, asked of ingest (`GET /v1/whoami`): ingest alone keeps
the keys (their hashes, expiry and revocation), so the other services ask it.

A positive answer is kept briefly, keyed by a hash of the key, so a client paging through
a log costs ingest one request; a key revoked at ingest stops working here within that
while. The key itself is never kept, logged or put in an error."""

from __future__ import annotations

import hashlib
import logging
import time

import httpx

from shared.problems import RETRY_AFTER_S, Problem, unavailable

log = logging.getLogger("nqt.whoami")
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Whoami:
    def __init__(self, ingest_url: str, *, cache_seconds: float = 30.0, timeout_s: float = 5.0):
        self.url = ingest_url.rstrip("/") + "/v1/whoami"
        self.cache_seconds, self.timeout_s = cache_seconds, timeout_s
        self._known: dict[str, tuple[str, float]] = {}  # sha256 of the key -> (unit, until)

    async def unit(self, key: str | None) -> str:
        """The unit whose key a request carries (`Authorization: Bearer <key>`): 401 for none or
        a bad one, 503 when ingest cannot tell now."""
        if not key:
            raise Problem(401, "send the unit's API key: Authorization: Bearer <key>", headers=CHALLENGE)
        digest, now = hashlib.sha256(key.encode()).hexdigest(), time.monotonic()
        known = self._known.get(digest)
        if known and known[1] > now:
            return known[0]
        unit = await self._ask(key)
        self._known = {d: entry for d, entry in self._known.items() if entry[1] > now}
        self._known[digest] = (unit, now + self.cache_seconds)
        return unit

    async def _ask(self, key: str) -> str:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.get(self.url, headers={"Authorization": f"Bearer {key}"})
        except httpx.HTTPError as err:
            log.warning("could not ask ingest whose key a request carries: %s: %s", type(err).__name__, err)
            raise unavailable("the API key cannot be checked now (ingest is unreachable)") from None
        if answer.status_code == 401:
            raise Problem(401, "the API key is unknown, revoked or expired", headers=CHALLENGE)
        unit = _unit_of(answer) if answer.status_code == 200 else None
        if unit is None:
            log.warning("ingest answered %s when asked whose key a request carries", answer.status_code)
            raise unavailable("the API key cannot be checked now (ingest did not say whose it is)",
                              retry_after=_retry_after(answer))
        return unit


def _unit_of(answer: httpx.Response) -> str | None:
    try:
        unit = answer.json().get("unit")
    except (ValueError, AttributeError):
        return None
    return unit if isinstance(unit, str) and unit else None


def _retry_after(answer: httpx.Response) -> int:
    value = answer.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else RETRY_AFTER_S
