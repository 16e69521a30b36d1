"""MongoDB access for the programs service's own collections.

Every write is idempotent by itself (no transactions): history rows have an `_id`
derived from the event key, current state is updated under a version guard, and
a replay after a crash changes nothing."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

INDEXES: mongo.IndexSpec = {
    "tasks": [IndexModel([("plan", ASCENDING)]), IndexModel([("programme", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "outcomes": [], "claims": [],
    "history": [IndexModel([("subject", ASCENDING), ("version", ASCENDING)])],
    "held": [IndexModel([("task_id", ASCENDING)]), IndexModel([("accepted_at", ASCENDING)])],
    "issuances": [], "indicator_values": [], "unit_reports": [],
    "supervisions": [IndexModel([("programme", ASCENDING)])],
    "units": [], "programmes": [], "indicators": [], "settings": [],
}

REGISTRY = {"registry.unit": "units", "registry.programme": "programmes", "registry.indicator": "indicators",
            "registry.settings": "settings"}


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

    async def replace_outcome(self, doc: dict) -> None:
        """Make `doc` the outcome of its event, whatever was recorded before (only the partition's owner writes it)."""
        await self.db.outcomes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def claim(self, records: list[tuple[str, str]]) -> set[int]:
        """Note each (event key, acceptance id) as seen, in one round trip; return the
        positions of those seen before (or earlier in `records`)."""
        return set(await mongo.insert_many_once(
            self.db.claims, [{"_id": key, "accept_id": accept_id} for key, accept_id in records]))

    async def outcomes_for(self, event_keys: list[str]) -> dict[str, dict]:
        return await _by_id(self.db.outcomes, event_keys)

    async def record_outcomes(self, docs: list[dict]) -> dict[str, dict]:
        """Insert the outcomes in one round trip; return those already recorded by someone
        else (a racing replica), which stand instead of ours."""
        theirs = await mongo.insert_many_once(self.db.outcomes, docs)
        return await self.outcomes_for([docs[i]["_id"] for i in theirs]) if theirs else {}

    # --- registry ---
    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        await self.db[REGISTRY[event_type]].update_one({"_id": entry["code"]}, {"$set": entry}, upsert=True)

    async def known(self, collection: str, codes: set[str]) -> set[str]:
        if not codes:
            return set()
        cursor = self.db[collection].find({"_id": {"$in": sorted(codes)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def registry_entry(self, collection: str, code: str) -> dict | None:
        return await self.db[collection].find_one({"_id": code})

    # --- history and versioned state ---
    async def add_history(self, *, key: str, subject: str, kind: str, version: str, accepted_at: str,
                          data: dict) -> bool:
        """Keep every applied event with its event time and arrival time; False if already kept."""
        return await mongo.insert_once(self.db.history, history_row(key=key, subject=subject, kind=kind,
                                                                    version=version, accepted_at=accepted_at,
                                                                    data=data))

    async def add_history_many(self, docs: list[dict]) -> None:
        """`add_history` for many events in one round trip; those already kept stay as they are."""
        if docs:
            await mongo.insert_many_once(self.db.history, docs)

    async def put_versioned(self, collection: str, key: str, fields: dict, version: str) -> bool:
        """Set `fields` unless a later version is already in force; False when it is (stale)."""
        try:
            result = await self.db[collection].update_one(
                {"_id": key, "version": {"$lt": version}}, {"$set": {**fields, "version": version}}, upsert=True)
        except Exception as err:
            if mongo.is_duplicate(err):  # the document exists with a version >= this one
                return (await self.db[collection].find_one({"_id": key}))["version"] == version
            raise
        return result.upserted_id is not None or result.matched_count == 1

    async def insert_once(self, collection: str, doc: dict) -> bool:
        return await mongo.insert_once(self.db[collection], doc)

    # --- plans and tasks ---
    async def plan(self, plan_key: str) -> dict | None:
        return await self.db.plans.find_one({"_id": plan_key})

    async def owners(self, task_ids: list[str]) -> dict[str, str]:
        cursor = self.db.tasks.find({"_id": {"$in": task_ids}}, {"plan": 1})
        return {doc["_id"]: doc["plan"] async for doc in cursor}

    async def put_plan(self, *, plan_key: str, plan: dict, tasks: list[dict], version: str) -> list[dict]:
        """Upsert the plan's tasks (progress of tasks that stay is kept; a task the plan
        dropped earlier and brings back starts afresh), cancel the tasks this revision
        dropped, then record the plan itself; return the state of every task of the plan."""
        ids = [t["task_id"] for t in tasks]
        fresh = {"status": "not_started", "progress": 0.0, "status_version": "", "as_of": None}
        await self.db.tasks.update_many({"_id": {"$in": ids}, "plan": plan_key, "dropped": True},
                                        {"$set": {**fresh, "dropped": False}, "$inc": {"seq": 1}})
        # A task this very plan version already wrote is left alone: a replay after a crash
        # (the record read again) must not count the change twice in `seq`. Its upsert then
        # fails as a duplicate key, which is the "already applied" answer. One write per task:
        # FerretDB 1.24 answers a bulk write with such an error in a form PyMongo cannot read.
        for t in tasks:
            await mongo.tolerating_duplicate(self.db.tasks.update_one(
                {"_id": t["task_id"], "plan_version": {"$ne": version}},
                {"$set": {**t, "plan": plan_key, "programme": plan["programme"], "dropped": False,
                          "plan_version": version},
                 "$setOnInsert": fresh,
                 "$inc": {"seq": 1}},
                upsert=True))
        await self.db.tasks.update_many(
            {"plan": plan_key, "_id": {"$nin": ids}, "dropped": False},
            {"$set": {"dropped": True, "status": "cancelled"}, "$inc": {"seq": 1}},
        )
        await self.db.plans.update_one({"_id": plan_key},
                                       {"$set": {**plan, "version": version, "task_ids": ids}}, upsert=True)
        return [doc async for doc in self.db.tasks.find({"plan": plan_key})]

    async def task(self, task_id: str) -> dict | None:
        return await self.db.tasks.find_one({"_id": task_id})

    async def tasks_for(self, task_ids: list[str]) -> dict[str, dict]:
        return await _by_id(self.db.tasks, task_ids)

    async def put_task_states(self, states: dict[str, tuple[int, dict]]) -> set[str]:
        """Write each task's new state (task id -> (seq read, state)) unless the task moved
        since it was read; return the ids of those that moved. One update per task: FerretDB
        1.24 stalls on an update command carrying several guarded statements."""
        moved = set()
        for task_id, (seq, state) in states.items():
            result = await self.db.tasks.update_one({"_id": task_id, "seq": seq},
                                                    {"$set": {k: v for k, v in state.items() if k != "_id"}})
            if result.matched_count == 0:
                moved.add(task_id)
        return moved

    async def update_task_status(self, task_id: str, fields: dict[str, Any], version: str) -> tuple[dict | None, dict]:
        """Apply a status report unless a later one (by event time) is already in force.
        Returns (state before, state after); before is None when nothing changed."""
        before = await self.db.tasks.find_one_and_update(
            {"_id": task_id, "status_version": {"$lt": version}},
            {"$set": {**fields, "status_version": version}, "$inc": {"seq": 1}},
            return_document=ReturnDocument.BEFORE,
        )
        return before, await self.task(task_id)

    # --- updates held until their plan arrives ---
    async def hold(self, doc: dict) -> bool:
        """Keep an update for its plan; False when its event key is held already."""
        return await mongo.insert_once(self.db.held, doc)

    async def held(self, event_key: str) -> dict | None:
        return await self.db.held.find_one({"_id": event_key})

    async def held_for(self, task_ids: list[str]) -> list[dict]:
        return [d async for d in self.db.held.find({"task_id": {"$in": task_ids}}, sort=[("version", ASCENDING)])]

    async def held_all(self, limit: int = 1000) -> list[dict]:
        return [d async for d in self.db.held.find({}, sort=[("accepted_at", ASCENDING)], limit=limit)]

    async def forget_held(self, keys: list[str]) -> None:
        if keys:
            await self.db.held.delete_many({"_id": {"$in": keys}})


def history_row(*, key: str, subject: str, kind: str, version: str, accepted_at: str, data: dict) -> dict:
    return {"_id": key, "subject": subject, "kind": kind, "version": version, "accepted_at": accepted_at,
            "data": data}


async def _by_id(collection, keys: list[str]) -> dict[str, dict]:
    """The documents with these `_id`s, in one query."""
    if not keys:
        return {}
    return {doc["_id"]: doc async for doc in collection.find({"_id": {"$in": keys}})}
