"""The notify service's own collections: units it can reach, and deliveries keyed
by what they are about (the once-only guard) with every attempt logged."""

from __future__ import annotations

from datetime import datetime, timezone

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

INDEXES: mongo.IndexSpec = {
    "units": [],
    "deliveries": [IndexModel([("recipient", ASCENDING), ("created_at", ASCENDING)])],
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class NotifyStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def put_unit(self, unit: dict) -> None:
        await self.db.units.update_one({"_id": unit["code"]}, {"$set": unit}, upsert=True)

    async def unit(self, code: str) -> dict | None:
        return await self.db.units.find_one({"_id": code})

    async def claim(self, *, identity: str, kind: str, recipient: str, channel: str, message_id: str) -> dict:
        """The delivery record for `identity`, created pending if new."""
        await self.db.deliveries.update_one(
            {"_id": identity},
            {"$setOnInsert": {"kind": kind, "recipient": recipient, "channel": channel, "message_id": message_id,
                              "status": "pending", "created_at": _now(), "attempts": []}},
            upsert=True,
        )
        return await self.db.deliveries.find_one({"_id": identity})

    async def record_attempt(self, identity: str, *, ok: bool, error: str | None, final: bool) -> None:
        status = "sent" if ok else ("failed" if final else "pending")
        await self.db.deliveries.update_one(
            {"_id": identity},
            {"$set": {"status": status, "updated_at": _now()},
             "$push": {"attempts": {"at": _now(), "ok": ok, "error": error}}},
        )

    async def deliveries(self, unit: str | None, limit: int = 200) -> list[dict]:
        query = {"recipient": unit} if unit else {}
        cursor = self.db.deliveries.find(query, sort=[("created_at", ASCENDING)], limit=limit)
        return [d async for d in cursor]
