"""In-memory stand-in for ProgramsStore, for unit tests only (integration tests use FerretDB).

It keeps the same contract as the real store: insert-once rows, task versions inserted
before the ones they supersede are deleted, version guards on the states in force."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from services.programs.store import REGISTRY, version_id


class FakeProgramsStore:
    def __init__(self):
        self.c: dict[str, dict[str, dict]] = {}

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

    def _latest(self, keep) -> tuple[dict[str, dict], list[str]]:
        found = [doc for doc in self._col("task_versions").values() if keep(doc)]
        latest: dict[str, dict] = {}
        for doc in found:
            if doc["task_id"] not in latest or latest[doc["task_id"]]["seq"] < doc["seq"]:
                latest[doc["task_id"]] = doc
        stale = [doc["_id"] for doc in found if doc is not latest[doc["task_id"]]]
        return {t: {**copy.deepcopy(doc), "_id": t} for t, doc in latest.items()}, stale

    async def tasks_of(self, programmes) -> tuple[dict[str, dict], list[str]]:
        codes = set(programmes)
        latest, stale = self._latest(lambda d: d["programme"] in codes or codes & set(d.get("left", ())))
        return {t: task for t, task in latest.items() if task["programme"] in codes}, stale

    async def tasks_by_id(self, task_ids) -> tuple[dict[str, dict], list[str]]:
        ids = set(task_ids)
        return self._latest(lambda d: d["task_id"] in ids) if ids else ({}, [])

    async def put_tasks(self, tasks: list[dict]) -> list[str]:
        docs = [{**task, "_id": version_id(task)} for task in tasks]
        return [docs[i]["_id"] for i in self._insert("task_versions", docs)]

    async def drop_versions(self, version_ids: list[str]) -> None:
        for key in version_ids:
            self._col("task_versions").pop(key, None)

    async def current_tasks(self) -> list[dict]:
        return list(self._latest(lambda d: True)[0].values())

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
    """In-memory stand-in for the few collection commands `shared.statelog` uses; `crash` (if set)
    is called before each write and may raise, and an `insert_many` may stop half-way as a crash
    in the middle of one command would (`partial`)."""

    def __init__(self, crash=None):
        self.docs: dict[str, dict] = {}
        self.crash = crash or (lambda: None)
        self.partial = False

    async def find(self, query: dict):
        wanted = set(query["g"]["$in"]) if query else None
        for doc in list(self.docs.values()):
            if wanted is None or wanted & set(doc["g"]):
                yield copy.deepcopy(doc)

    async def insert_many(self, docs: list[dict], ordered: bool = True) -> None:
        self.crash()
        for i, doc in enumerate(docs):
            if self.partial and i == len(docs) // 2 and i:
                self.partial = False
                raise ConnectionError("lost in the middle of an insert")
            self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def delete_many(self, query: dict) -> None:
        self.crash()
        for key in query["_id"]["$in"]:
            self.docs.pop(key, None)
