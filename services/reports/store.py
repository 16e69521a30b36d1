"""The reports service's own read models, kept from `programs.changes`.

Every write is idempotent and order-tolerant: task states carry the programs
service's sequence number and an older one never overwrites a newer one."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

INDEXES: mongo.IndexSpec = {
    "tasks": [IndexModel([("programme", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "programmes": [], "units": [], "indicators": [], "issued": [],
}
REGISTRY_KINDS = {"unit": "units", "programme": "programmes", "indicator": "indicators"}
TASK_FIELDS = ("programme", "plan", "lead_unit", "lead_person", "title", "due_date", "status", "progress",
               "as_of", "dropped")


class ReportsStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def apply_change(self, change: dict) -> None:
        kind, key, state = change["kind"], change["id"], change["state"]
        if kind in REGISTRY_KINDS:
            await self.db[REGISTRY_KINDS[kind]].update_one({"_id": key}, {"$set": state}, upsert=True)
        elif kind == "programme_issued":
            await self.db.issued.update_one({"_id": key}, {"$set": state}, upsert=True)
        elif kind == "plan":
            await self._apply_plan(key, change["programme"], state)
        elif kind == "task":
            await self._apply_task(key, change["seq"], state)

    async def _apply_plan(self, key: str, programme: str, state: dict) -> None:
        if state["status"] == "submitted":
            update = {"$set": {"programme": programme, "submitted": True}}
        else:  # a rejected submission counts until a revision of the plan is accepted
            update = {"$setOnInsert": {"programme": programme, "submitted": False}}
        await self.db.plans.update_one({"_id": key}, update, upsert=True)

    async def _apply_task(self, key: str, seq: int, state: dict) -> None:
        doc = {f: state.get(f) for f in TASK_FIELDS} | {"seq": seq}
        try:
            await self.db.tasks.update_one({"_id": key, "seq": {"$lt": seq}}, {"$set": doc}, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):  # duplicate: a newer state is already there
                raise

    async def programmes(self) -> list[dict]:
        return [d async for d in self.db.programmes.find({}, sort=[("_id", ASCENDING)])]

    async def issued(self) -> dict[str, dict]:
        return {d["_id"]: d async for d in self.db.issued.find({})}

    async def tasks(self) -> list[dict]:
        projection = {"programme": 1, "status": 1, "progress": 1, "due_date": 1, "lead_unit": 1}
        return [d async for d in self.db.tasks.find({}, projection)]

    async def plans(self) -> list[dict]:
        return [d async for d in self.db.plans.find({}, {"programme": 1, "submitted": 1})]

    async def indicators(self) -> list[dict]:
        return [d async for d in self.db.indicators.find({}, sort=[("_id", ASCENDING)])]

    async def units(self) -> list[dict]:
        return [d async for d in self.db.units.find({}, sort=[("_id", ASCENDING)])]
