"""The notify service's own collections:

- what it needs to know, kept from events: units (registry), tasks, unit reports,
  open cycles, the registry header;
- `deliveries`: one document per message and channel, keyed by what the message
  is about (the once-only guard), with every attempt logged and the next one due;
- `digests` and `items`: a day's digest is claimed before it is sent, and each
  item records the digest that carries it, so nothing is said twice or missed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pymongo import ASCENDING, IndexModel

from shared import mongo
from shared.events import utc_iso, utc_now

INDEXES: mongo.IndexSpec = {
    "units": [], "settings": [], "cycles": [], "unit_reports": [],
    "tasks": [IndexModel([("status", ASCENDING)])],
    "deliveries": [IndexModel([("recipient", ASCENDING), ("created_at", ASCENDING)]),
                   IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)])],
    "digests": [IndexModel([("delivered", ASCENDING)])], "items": [],
    "locks": [IndexModel([("delivery", ASCENDING), ("attempt", ASCENDING)])],
    "waiting": [IndexModel([("recipient", ASCENDING)])],
}
TASK_FIELDS = ("task_id", "programme", "title", "lead_unit", "lead_person", "due_date", "status", "dropped")


class NotifyStore:
    def __init__(self, db):
        self.db = db

    # --- what notify knows ---
    async def put_registry(self, kind: str, state: dict) -> None:
        collection = "units" if kind == "unit" else "settings"
        await self.db[collection].update_one({"_id": state["code"]}, {"$set": state}, upsert=True)

    async def unit(self, code: str) -> dict | None:
        return await self.db.units.find_one({"_id": code})

    async def settings(self) -> dict:
        return await self.db.settings.find_one({"_id": "settings"}) or {}

    async def put_task(self, task_id: str, seq: int, state: dict) -> None:
        doc = {f: state.get(f) for f in TASK_FIELDS} | {"task_id": task_id, "seq": seq}
        try:
            await self.db.tasks.update_one({"_id": task_id, "seq": {"$lt": seq}}, {"$set": doc}, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):  # a newer state is already there
                raise

    async def open_tasks(self) -> list[dict]:
        query = {"status": {"$in": ["not_started", "in_progress", "blocked"]}}
        return [d async for d in self.db.tasks.find(query)]

    async def put_unit_report(self, unit: str, cycle: str) -> None:
        await self.db.unit_reports.update_one({"_id": f"{unit}|{cycle}"}, {"$set": {"unit": unit, "cycle": cycle}},
                                              upsert=True)

    async def reported(self) -> set[tuple[str, str]]:
        return {(d["unit"], d["cycle"]) async for d in self.db.unit_reports.find({})}

    async def put_cycle(self, event: dict) -> None:
        await self.db.cycles.update_one({"_id": event["cycle"]}, {"$set": event}, upsert=True)

    async def cycles(self) -> list[dict]:
        return [d async for d in self.db.cycles.find({})]

    # --- notices waiting for their recipient to be known ---
    async def wait_for(self, code: str, *, kind: str, about: str, trigger: dict) -> str:
        """Keep a notice until unit `code` is known; its key."""
        key = f"{kind}|{about}|{code}"
        await self.db.waiting.update_one({"_id": key}, {"$setOnInsert": {
            "recipient": code, "kind": kind, "about": about, "trigger": trigger, "since": utc_now()}}, upsert=True)
        return key

    async def waiting_for(self, code: str) -> list[dict]:
        return [d async for d in self.db.waiting.find({"recipient": code})]

    async def forget_waiting(self, key: str) -> None:
        await self.db.waiting.delete_one({"_id": key})

    # --- deliveries: the once-only guard and the log ---
    async def claim(self, *, key: str, message: dict, channel: str, lease_s: float) -> dict:
        """The delivery record for `key`, created if new, and leased to this caller for one
        attempt when an attempt is due (status stays pending). `leased` says which."""
        now = utc_now()
        await self.db.deliveries.update_one(
            {"_id": key},
            {"$setOnInsert": {**message, "channel": channel, "status": "pending", "created_at": now,
                              "attempts": [], "next_attempt_at": now}},
            upsert=True)
        return await self.lease(key, lease_s)

    async def lease(self, key: str, lease_s: float) -> dict:
        """The delivery, `leased` True for the one caller allowed the next attempt.

        The lock is a unique insert, one per attempt (FerretDB 1.24 does not serialise
        concurrent findAndModify on one document). A lock left by a crash is taken over,
        under a new generation, once it is older than the lease."""
        doc = await self.db.deliveries.find_one({"_id": key})
        now = utc_now()
        if doc is None or doc["status"] != "pending" or doc["next_attempt_at"] > now:
            return {**(doc or {}), "leased": False}
        attempt = len(doc.get("attempts") or []) + 1
        locks = [d async for d in self.db.locks.find({"delivery": key, "attempt": attempt})]
        if locks and max(lock["expires_at"] for lock in locks) > now:
            return {**doc, "leased": False}
        generation = max((lock["generation"] for lock in locks), default=-1) + 1
        leased = await mongo.insert_once(self.db.locks, {
            "_id": f"{key}#{attempt}#{generation}", "delivery": key, "attempt": attempt,
            "generation": generation, "expires_at": _later(lease_s)})
        if leased:  # keep the retry loop from picking it up again while the attempt is in hand
            await self.db.deliveries.update_one({"_id": key}, {"$set": {"next_attempt_at": _later(lease_s)}})
        return {**doc, "leased": leased}

    async def record_attempt(self, key: str, *, ok: bool, error: str | None, retry_in: float | None) -> None:
        """Log the attempt; sent, failed for good (no retry), or pending until `retry_in` from now."""
        status = "sent" if ok else ("pending" if retry_in is not None else "failed")
        fields = {"status": status, "updated_at": utc_now()}
        if retry_in is not None:
            fields["next_attempt_at"] = _later(retry_in)
        await self.db.deliveries.update_one(
            {"_id": key}, {"$set": fields, "$push": {"attempts": {"at": utc_now(), "ok": ok, "error": error}}})

    async def due_retries(self, limit: int = 100) -> list[str]:
        cursor = self.db.deliveries.find({"status": "pending", "next_attempt_at": {"$lte": utc_now()}}, {"_id": 1},
                                         limit=limit)
        return [d["_id"] async for d in cursor]

    async def delivery(self, key: str) -> dict | None:
        return await self.db.deliveries.find_one({"_id": key})

    async def deliveries(self, recipients: list[str] | None, limit: int = 200) -> list[dict]:
        """The delivery log of these recipients (None: everyone's), oldest first."""
        query = {"recipient": {"$in": recipients}} if recipients is not None else {}
        cursor = self.db.deliveries.find(query, {"attachments": 0}, sort=[("created_at", ASCENDING)], limit=limit)
        return [d async for d in cursor]

    # --- digests ---
    async def known_items(self, identities: list[str]) -> set[str]:
        return {d["_id"] async for d in self.db.items.find({"_id": {"$in": identities}}, {"_id": 1})}

    async def claim_digest(self, digest_id: str, *, recipient: str, day: str, items: list[dict]) -> bool:
        return await mongo.insert_once(self.db.digests, {"_id": digest_id, "recipient": recipient, "day": day,
                                                         "items": items, "delivered": False, "created_at": utc_now()})

    async def mark_digest_delivered(self, digest_id: str) -> None:
        """Its delivery records exist: from here on the retry loop owns them."""
        await self.db.digests.update_one({"_id": digest_id}, {"$set": {"delivered": True}})

    async def undelivered_digests(self) -> list[dict]:
        return [d async for d in self.db.digests.find({"delivered": False})]

    async def owned_items(self, digest_id: str, identities: list[str]) -> set[str]:
        cursor = self.db.items.find({"_id": {"$in": identities}, "digest": digest_id}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def digest(self, digest_id: str) -> dict | None:
        return await self.db.digests.find_one({"_id": digest_id})

    async def record_items(self, digest_id: str, identities: list[str]) -> None:
        for ident in identities:
            await mongo.insert_once(self.db.items, {"_id": ident, "digest": digest_id})


def _later(seconds: float) -> str:
    return utc_iso(datetime.now(timezone.utc) + timedelta(seconds=seconds))

