"""The ingest service's own collection: the status of every event a unit published,
kept from its acceptance and from the `programs.outcomes` records.

Every write is idempotent by itself (no transactions) and tolerates any order of
arrival: an outcome is written under a status guard (`domain.replaceable`), so
the first final one wins, and "accepted" is only ever inserted, never written over
an outcome."""

from __future__ import annotations

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo
from shared.events import Envelope

from services.ingest import domain

INDEXES: mongo.IndexSpec = {"events": []}

DECISION = ("accepted_at", "decided_at", "accept_id", "event_time", "programme",
            "code", "message_vi", "message_en", "findings")


class IngestStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def record_accepted(self, events: list[Envelope], *, accepted_at: str) -> None:
        """Mark the events accepted, in one round-trip; an outcome already recorded stays."""
        ops = [UpdateOne({"_id": e.key},
                         {"$setOnInsert": {"source": e.source, "id": e.id, "type": e.type,
                                           "status": domain.ACCEPTED, "accepted_at": accepted_at}},
                         upsert=True)
               for e in events]
        await _tolerating_duplicate(self.db.events.bulk_write(ops, ordered=False))

    async def record_outcome(self, outcome: dict) -> None:
        """Store one `programs.outcomes` record; reading it again changes nothing."""
        key, status = outcome["event_key"], outcome["outcome"]
        identity = {"source": outcome["source"], "id": outcome["id"], "type": outcome.get("type")}
        guard = {"_id": key, "status": {"$in": list(domain.replaceable(status))}}
        if status == domain.DUPLICATE:
            await self._count_duplicate(key, outcome, identity)
            await self.db.events.update_one(  # the document exists now: no upsert
                guard, {"$set": {"status": status, "decided_at": outcome.get("decided_at")}})
            return
        fields = {f: outcome[f] for f in DECISION if f in outcome}
        # No match means the key already has its outcome; the upsert's insert then fails
        # as a duplicate key, which is the "already decided" answer.
        await _tolerating_duplicate(self.db.events.update_one(
            guard, {"$set": {**identity, **fields, "status": status}}, upsert=True))

    async def _count_duplicate(self, key: str, outcome: dict, identity: dict) -> None:
        # One entry per duplicate submission (its accept_id), so a redelivered record counts once.
        count = {"$addToSet": {"duplicate_accept_ids": outcome["accept_id"]}}
        first = {**identity, "accepted_at": outcome.get("accepted_at")}
        try:
            await self.db.events.update_one({"_id": key}, {**count, "$setOnInsert": first}, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):
                raise
            await self.db.events.update_one({"_id": key}, count)  # a racing write inserted it first

    async def event(self, *, source: str, event_id: str) -> dict | None:
        """The status document of `source`'s event `event_id`; never another unit's."""
        return await self.db.events.find_one({"_id": f"{source}:{event_id}", "source": source})


async def _tolerating_duplicate(write) -> None:
    try:
        await write
    except Exception as err:
        if not mongo.is_duplicate(err):
            raise
