"""MongoDB access for the programs service's own collections.

Every write is idempotent by itself (no transactions): history rows have an `_id`
derived from the event key, current state is updated under a version guard, and
a replay after a crash changes nothing."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

INDEXES: mongo.IndexSpec = {
    "tasks": [IndexModel([("plan", ASCENDING)]), IndexModel([("programme", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "outcomes": [],
    "task_history": [IndexModel([("task_id", ASCENDING)])],
    "units": [],
    "programmes": [],
    "indicators": [],
}

REGISTRY = {"registry.unit": "units", "registry.programme": "programmes", "registry.indicator": "indicators"}


class ProgramsStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    # --- outcomes: the record that an event has been decided ---
    async def outcome(self, event_key: str) -> dict | None:
        return await self.db.outcomes.find_one({"_id": event_key})

    async def record_outcome(self, doc: dict) -> dict:
        """Insert the outcome; if one is already there (a racing replica), return that one."""
        if await mongo.insert_once(self.db.outcomes, doc):
            return doc
        return await self.outcome(doc["_id"])

    # --- registry ---
    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        await self.db[REGISTRY[event_type]].update_one({"_id": entry["code"]}, {"$set": entry}, upsert=True)

    async def known(self, collection: str, codes: set[str]) -> set[str]:
        if not codes:
            return set()
        cursor = self.db[collection].find({"_id": {"$in": sorted(codes)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def programme(self, code: str) -> dict | None:
        return await self.db.programmes.find_one({"_id": code})

    # --- plans and tasks ---
    async def plan(self, plan_key: str) -> dict | None:
        return await self.db.plans.find_one({"_id": plan_key})

    async def owners(self, task_ids: list[str]) -> dict[str, str]:
        cursor = self.db.tasks.find({"_id": {"$in": task_ids}}, {"plan": 1})
        return {doc["_id"]: doc["plan"] async for doc in cursor}

    async def put_plan(self, *, plan_key: str, plan: dict, tasks: list[dict], version: str) -> list[dict]:
        """Upsert the plan's tasks (progress of tasks that stay is kept), cancel the
        tasks that the revision dropped, then record the plan itself; return the
        current state of every task of the plan."""
        ids = [t["task_id"] for t in tasks]
        ops = [
            UpdateOne(
                {"_id": t["task_id"]},
                {"$set": {**t, "plan": plan_key, "programme": plan["programme"], "dropped": False,
                          "plan_version": version},
                 "$setOnInsert": {"status": "not_started", "progress": 0.0, "status_version": ""},
                 "$inc": {"seq": 1}},
                upsert=True,
            )
            for t in tasks
        ]
        await self.db.tasks.bulk_write(ops, ordered=False)
        await self.db.tasks.update_many(
            {"plan": plan_key, "_id": {"$nin": ids}, "dropped": False},
            {"$set": {"dropped": True, "status": "cancelled", "status_version": version}, "$inc": {"seq": 1}},
        )
        await self.db.plans.update_one({"_id": plan_key},
                                       {"$set": {**plan, "version": version, "task_ids": ids}}, upsert=True)
        return [doc async for doc in self.db.tasks.find({"plan": plan_key})]

    async def task(self, task_id: str) -> dict | None:
        return await self.db.tasks.find_one({"_id": task_id})

    async def add_task_history(self, doc: dict) -> bool:
        """False when this event is already in the task's history."""
        return await mongo.insert_once(self.db.task_history, doc)

    async def update_task_status(self, task_id: str, fields: dict[str, Any], version: str) -> dict:
        """Apply a status report unless a later one (by event time) is already in force."""
        updated = await self.db.tasks.find_one_and_update(
            {"_id": task_id, "status_version": {"$lt": version}},
            {"$set": {**fields, "status_version": version}, "$inc": {"seq": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return updated or await self.task(task_id)
