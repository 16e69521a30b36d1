"""Exclusive claims on a piece of work (opening a cycle, issuing its report) among replicas,
built on unique inserts alone: FerretDB 1.24 does not make concurrent updates of one
document atomic, so a guarded update_one or find_one_and_update is no compare-and-set there.

A claim is the document `{subject}#{generation}`. Taking a free subject inserts generation 0;
taking over one whose holder stopped refreshing it for `stale_after` inserts the next
generation, and of two replicas racing for it the unique `_id` lets exactly one in. The
holder refreshes its claim while it works (`keeping`), so a live holder is never taken over,
and checks that it still holds the latest generation (`holds`) before each step that must
happen once."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, IndexModel

from shared import mongo
from shared.events import utc_iso

log = logging.getLogger("nqt.claims")
INDEXES = [IndexModel([("subject", ASCENDING), ("generation", ASCENDING)])]
RELEASED = "0000-01-01T00:00:00Z"  # sorts before any refresh: a released claim is stale at once


@dataclass(frozen=True)
class Claim:
    subject: str
    generation: int

    @property
    def id(self) -> str:
        return f"{self.subject}#{self.generation}"


class Claims:
    def __init__(self, collection, *, holder: str, stale_after: timedelta):
        self.collection, self.holder, self.stale_after = collection, holder, stale_after

    async def take(self, subject: str, now: datetime | None = None) -> Claim | None:
        """The claim on `subject` for this holder, or None while another holder keeps it fresh
        (or won the race to take it over)."""
        now = now or datetime.now(timezone.utc)
        latest = await self._latest(subject)
        if latest is not None and latest["holder"] == self.holder:  # ours: a later run goes on with it
            claim = Claim(subject, latest["generation"])
            await self.refresh(claim, now)
            return claim
        if latest is not None and latest["refreshed_at"] > utc_iso(now - self.stale_after):
            return None
        claim = Claim(subject, latest["generation"] + 1 if latest else 0)
        if latest is not None:
            log.warning("taking over %s from %s, silent since %s", subject, latest["holder"], latest["refreshed_at"])
        taken = await mongo.insert_once(self.collection, {
            "_id": claim.id, "subject": subject, "generation": claim.generation, "holder": self.holder,
            "refreshed_at": utc_iso(now)})
        return claim if taken else None

    async def refresh(self, claim: Claim, now: datetime | None = None) -> None:
        """Say the holder is still at it (only the holder writes its generation's document)."""
        now = now or datetime.now(timezone.utc)
        await self.collection.update_one({"_id": claim.id}, {"$set": {"refreshed_at": utc_iso(now)}})

    async def release(self, claim: Claim) -> None:
        """Let the subject go at once, as if its holder had gone silent long ago: the next `take`
        inserts the following generation (only the holder writes its generation's document)."""
        await self.collection.update_one({"_id": claim.id}, {"$set": {"refreshed_at": RELEASED}})

    async def holds(self, claim: Claim) -> bool:
        """True while no later generation took the subject over."""
        latest = await self._latest(claim.subject)
        return latest is not None and latest["generation"] == claim.generation

    @asynccontextmanager
    async def keeping(self, claim: Claim):
        """Refresh `claim` a few times per stale window for as long as the block runs."""
        async def refreshing():
            while True:
                await asyncio.sleep(self.stale_after.total_seconds() / 4)
                try:
                    await self.refresh(claim)
                except Exception:  # the next refresh tries again; a lost claim shows in `holds`
                    log.exception("could not refresh the claim %s", claim.id)

        task = asyncio.create_task(refreshing())
        try:
            yield claim
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _latest(self, subject: str) -> dict | None:
        return await self.collection.find_one({"subject": subject}, sort=[("generation", -1)])
