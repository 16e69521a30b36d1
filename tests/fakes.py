"""In-memory stand-in for ProgramsStore, for unit tests only (integration tests use FerretDB).

It keeps the same contract as the real store: insert-once rows, task states as the real store
keeps them (over in-memory collections), version guards on the states in force."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from pymongo.errors import BulkWriteError

from shared.mongo import DUPLICATE_KEY

from services.programs.store import REGISTRY, ProgramsStore


class FakeProgramsStore:
    def __init__(self):
        self.c: dict[str, dict[str, dict]] = {}
        ProgramsStore.__init__(self, FakeDb())

    def _col(self, name: str) -> dict[str, dict]:
        return self.c.setdefault(name, {})

    def _by_id(self, name: str, keys: Iterable[str]) -> dict[str, dict]:
        col = self._col(name)
        return {k: copy.deepcopy(col[k]) for k in set(keys) if k in col}

    def _insert(self, name: str, docs: list[dict]) -> list[int]:
        col, there = self._col(name), []
        for i, doc in enumerate(docs):
            if doc["_id"] in col:
                there.append(i)
            else:
                col[doc["_id"]] = copy.deepcopy(doc)
        return there

    async def outcomes_for(self, event_keys) -> dict[str, dict]:
        return self._by_id("outcomes", event_keys)

    async def record_outcomes(self, docs: list[dict]) -> dict[str, dict]:
        there = self._insert("outcomes", docs)
        return self._by_id("outcomes", [docs[i]["_id"] for i in there])

    async def replace_outcome(self, doc: dict) -> None:
        self._col("outcomes")[doc["_id"]] = copy.deepcopy(doc)

    async def registry_entries(self, collection: str, codes) -> dict[str, dict]:
        return self._by_id(collection, codes)

    async def registry_codes(self, collection: str) -> list[str]:
        return list(self._col(collection))

    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        col = self._col(REGISTRY[event_type])
        col[entry["code"]] = {**col.get(entry["code"], {}), **copy.deepcopy(entry), "_id": entry["code"]}

    # task states: the real store's methods over in-memory collections
    tasks_of, tasks_by_id, put_tasks = ProgramsStore.tasks_of, ProgramsStore.tasks_by_id, ProgramsStore.put_tasks
    fold_tasks, current_tasks = ProgramsStore.fold_tasks, ProgramsStore.current_tasks
    _migrate_versions = ProgramsStore._migrate_versions

    async def plans_for(self, plan_keys) -> dict[str, dict]:
        return self._by_id("plans", plan_keys)

    async def put_plan(self, plan: dict) -> None:
        self._col("plans")[plan["_id"]] = copy.deepcopy(plan)

    async def versioned_for(self, collection: str, keys) -> dict[str, dict]:
        return self._by_id(collection, keys)

    async def put_versioned(self, collection: str, key: str, fields: dict, version: str) -> None:
        current = self._col(collection).get(key)
        if current is None or current["version"] < version:
            self._col(collection)[key] = {**copy.deepcopy(fields), "_id": key, "version": version}

    async def insert_many_once(self, collection: str, docs: list[dict]) -> None:
        self._insert(collection, docs)

    async def hold_many(self, docs: list[dict]) -> None:
        self._insert("held", docs)

    async def held_for(self, *, task_ids=(), keys=()) -> dict[str, dict]:
        task_ids = set(task_ids)
        held = {k: copy.deepcopy(d) for k, d in self._col("held").items() if d["task_id"] in task_ids}
        return {**held, **self._by_id("held", keys)}

    async def held_of(self, programmes, limit: int = 1000) -> list[dict]:
        held = [copy.deepcopy(d) for d in self._col("held").values() if d["event"]["data"]["programme"] in programmes]
        return sorted(held, key=lambda d: d["accepted_at"])[:limit]

    async def forget_held(self, keys: list[str]) -> None:
        for key in keys:
            self._col("held").pop(key, None)


class FakeCollection:
    """In-memory stand-in for the few collection commands the task states use (`shared.statelog`,
    the programs store's task methods): `$in` queries, unordered inserts, deletes by `_id`.
    `crash` (if set) is called before each write and may raise, and an `insert_many` may stop
    half-way as a crash in the middle of one command would (`partial`)."""

    def __init__(self, crash=None):
        self.docs: dict[str, dict] = {}
        self.crash = crash or (lambda: None)
        self.partial = False

    async def find(self, query: dict, batch_size: int = 0):  # batch_size: how many a reply holds, all at once here
        for doc in [d for d in self.docs.values() if _matches(d, query)]:
            yield copy.deepcopy(doc)

    async def find_one(self, query: dict) -> dict | None:
        return next((copy.deepcopy(d) for d in self.docs.values() if _matches(d, query)), None)

    async def insert_many(self, docs: list[dict], ordered: bool = True) -> None:
        self.crash()
        there = []
        for i, doc in enumerate(docs):
            if self.partial and i == len(docs) // 2 and i:
                self.partial = False
                raise ConnectionError("lost in the middle of an insert")
            if doc["_id"] in self.docs:
                there.append({"index": i, "code": DUPLICATE_KEY})
            else:
                self.docs[doc["_id"]] = copy.deepcopy(doc)
        if there:
            raise BulkWriteError({"writeErrors": there})

    async def delete_many(self, query: dict) -> None:
        self.crash()
        for doc in [d for d in self.docs.values() if _matches(d, query)]:
            del self.docs[doc["_id"]]


def _matches(doc: dict, query: dict) -> bool:
    """Equality or `$in` on each field; an array field matches when one of its values does."""
    for name, wanted in query.items():
        values = set(wanted["$in"]) if isinstance(wanted, dict) else {wanted}
        have = doc.get(name)
        if not values & (set(have) if isinstance(have, list) else {have}):
            return False
    return True


class FakeDb(dict):
    """Collections by attribute, made on first use."""

    def __getattr__(self, name: str) -> FakeCollection:
        return self.setdefault(name, FakeCollection())
