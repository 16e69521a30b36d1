"""In-memory stand-in for ProgramsStore, for unit tests only (integration tests use FerretDB).

It keeps the same contract as the real store: version guards, insert-once history."""

from __future__ import annotations

import copy
from typing import Any

from services.programs.store import REGISTRY, history_row


class FakeProgramsStore:
    def __init__(self):
        self.c: dict[str, dict[str, dict]] = {}

    def _col(self, name: str) -> dict[str, dict]:
        return self.c.setdefault(name, {})

    def _get(self, name: str, key: str) -> dict | None:
        doc = self._col(name).get(key)
        return copy.deepcopy(doc) if doc is not None else None

    async def outcome(self, event_key: str) -> dict | None:
        return self._get("outcomes", event_key)

    async def record_outcome(self, doc: dict) -> dict:
        return self._get("outcomes", doc["_id"]) or self._put("outcomes", doc)

    async def claim(self, records: list[tuple[str, str]]) -> set[int]:
        again = set()
        for i, (key, accept_id) in enumerate(records):
            if not await self.insert_once("claims", {"_id": key, "accept_id": accept_id}):
                again.add(i)
        return again

    async def outcomes_for(self, event_keys: list[str]) -> dict[str, dict]:
        return {k: self._get("outcomes", k) for k in event_keys if k in self._col("outcomes")}

    async def record_outcomes(self, docs: list[dict]) -> dict[str, dict]:
        theirs = {d["_id"]: self._get("outcomes", d["_id"]) for d in docs if d["_id"] in self._col("outcomes")}
        for doc in docs:
            if doc["_id"] not in theirs:
                self._put("outcomes", doc)
        return theirs

    async def add_history_many(self, docs: list[dict]) -> None:
        for doc in docs:
            await self.insert_once("history", doc)

    async def tasks_for(self, task_ids: list[str]) -> dict[str, dict]:
        return {t: self._get("tasks", t) for t in task_ids if t in self._col("tasks")}

    async def put_task_states(self, states: dict[str, tuple[int, dict]]) -> set[str]:
        moved = set()
        for task_id, (seq, state) in states.items():
            if self._col("tasks")[task_id]["seq"] != seq:
                moved.add(task_id)
            else:
                self._put("tasks", {**state, "_id": task_id})
        return moved

    def _put(self, name: str, doc: dict) -> dict:
        self._col(name)[doc["_id"]] = copy.deepcopy(doc)
        return doc

    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        self._put(REGISTRY[event_type], {**entry, "_id": entry["code"]})

    async def known(self, collection: str, codes: set[str]) -> set[str]:
        return {c for c in codes if c in self._col(collection)}

    async def registry_entry(self, collection: str, code: str) -> dict | None:
        return self._get(collection, code)

    async def add_history(self, *, key: str, subject: str, kind: str, version: str, accepted_at: str,
                          data: dict) -> bool:
        return await self.insert_once("history", history_row(key=key, subject=subject, kind=kind, version=version,
                                                             accepted_at=accepted_at, data=data))

    async def put_versioned(self, collection: str, key: str, fields: dict, version: str) -> bool:
        current = self._get(collection, key)
        if current is not None and current["version"] >= version:
            return current["version"] == version
        self._put(collection, {**fields, "_id": key, "version": version})
        return True

    async def insert_once(self, collection: str, doc: dict) -> bool:
        if doc["_id"] in self._col(collection):
            return False
        self._put(collection, doc)
        return True

    async def plan(self, plan_key: str) -> dict | None:
        return self._get("plans", plan_key)

    async def owners(self, task_ids: list[str]) -> dict[str, str]:
        tasks = self._col("tasks")
        return {t: tasks[t]["plan"] for t in task_ids if t in tasks}

    async def put_plan(self, *, plan_key: str, plan: dict, tasks: list[dict], version: str) -> list[dict]:
        ids = [t["task_id"] for t in tasks]
        fresh = {"status": "not_started", "progress": 0.0, "status_version": "", "as_of": None}
        col = self._col("tasks")
        for task in tasks:
            doc = col.get(task["task_id"])
            if doc is not None and doc.get("plan_version") == version:
                continue  # written by this very plan version already: a replay after a crash
            if doc is None:
                doc = col[task["task_id"]] = {"_id": task["task_id"], **fresh, "seq": 0}
            elif doc["plan"] == plan_key and doc["dropped"]:
                doc.update(fresh)
            doc.update({**copy.deepcopy(task), "plan": plan_key, "programme": plan["programme"], "dropped": False,
                        "plan_version": version})
            doc["seq"] += 1
        for doc in col.values():
            if doc["plan"] == plan_key and doc["_id"] not in ids and not doc["dropped"]:
                doc.update(dropped=True, status="cancelled", seq=doc["seq"] + 1)
        self._put("plans", {**plan, "_id": plan_key, "version": version, "task_ids": ids})
        return [copy.deepcopy(d) for d in col.values() if d["plan"] == plan_key]

    async def task(self, task_id: str) -> dict | None:
        return self._get("tasks", task_id)

    async def update_task_status(self, task_id: str, fields: dict[str, Any], version: str):
        doc = self._col("tasks")[task_id]
        if doc["status_version"] >= version:
            return None, copy.deepcopy(doc)
        before = copy.deepcopy(doc)
        doc.update({**copy.deepcopy(fields), "status_version": version, "seq": doc["seq"] + 1})
        return before, copy.deepcopy(doc)

    async def hold(self, doc: dict) -> bool:
        return await self.insert_once("held", doc)

    async def held(self, event_key: str) -> dict | None:
        return copy.deepcopy(self._col("held").get(event_key))

    async def held_for(self, task_ids: list[str]) -> list[dict]:
        held = [copy.deepcopy(d) for d in self._col("held").values() if d["task_id"] in task_ids]
        return sorted(held, key=lambda d: d["version"])

    async def held_all(self, limit: int = 1000) -> list[dict]:
        return sorted((copy.deepcopy(d) for d in self._col("held").values()), key=lambda d: d["accepted_at"])[:limit]

    async def forget_held(self, keys: list[str]) -> None:
        for key in keys:
            self._col("held").pop(key, None)
