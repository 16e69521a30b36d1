"""MongoDB access for the programs service's own collections.

The replica that holds a programme's partition is its only writer: it reads the state it
needs once, decides a batch in memory and writes the batch's effects with a few bulk
commands. Every write is idempotent by itself (no transactions): rows are inserted under an
`_id` derived from the event key, and a task's state is a series of versions
(`{task_id}|{seq}`) inserted before the versions they supersede are deleted, so a crash at
any point leaves either the old or the new state, never none, and reading the batch again
changes nothing."""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING, IndexModel

from shared import kafka, mongo

INDEXES: mongo.IndexSpec = {
    "task_versions": [IndexModel([("programme", ASCENDING)]), IndexModel([("task_id", ASCENDING)]),
                      IndexModel([("left", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "outcomes": [],
    "held": [IndexModel([("task_id", ASCENDING)]), IndexModel([("accepted_at", ASCENDING)])],
    "issuances": [], "indicator_values": [], "unit_reports": [],
    "supervisions": [IndexModel([("programme", ASCENDING)])],
    "units": [], "programmes": [], "indicators": [], "settings": [],
}

REGISTRY = {"registry.unit": "units", "registry.programme": "programmes", "registry.indicator": "indicators",
            "registry.settings": "settings"}


def version_id(task: dict) -> str:
    """The `_id` of the stored version of a task's state (the task's `seq` says which change it is)."""
    return f"{task['_id']}|{task['seq']}"


def _version(task: dict) -> dict:
    """A stored version: what loading asks by (task, programme, the programmes it left, seq)
    beside the state packed (see `mongo.pack`)."""
    keys = {"task_id": task["_id"], "programme": task["programme"], "seq": task["seq"]}
    return {"_id": version_id(task), **keys, **({"left": task["left"]} if "left" in task else {}),
            "z": mongo.pack({k: v for k, v in task.items() if k != "_id"})}


def _state(version: dict) -> dict:
    """A task's state from its stored version (written packed, or field by field before)."""
    state = mongo.unpack(version["z"]) if "z" in version else version
    return {**state, "_id": version["task_id"]}


class ProgramsStore:
    def __init__(self, db):
        self.db = db

    # --- outcomes: one document per event, its history entry when it was applied ---
    async def outcomes_for(self, event_keys: Iterable[str]) -> dict[str, dict]:
        return {key: _decoded(doc) for key, doc in (await _by_id(self.db.outcomes, event_keys)).items()}

    async def record_outcomes(self, docs: list[dict]) -> dict[str, dict]:
        """Insert the outcomes in one round trip; return those already recorded by someone
        else (a replica that held the partition before), which stand instead of ours."""
        theirs = await mongo.insert_many_once(self.db.outcomes, [_encoded(doc) for doc in docs])
        return await self.outcomes_for([docs[i]["_id"] for i in theirs]) if theirs else {}

    async def all_outcomes(self) -> dict[str, dict]:
        """Every outcome, by event key (for tools and tests: the service reads them by key)."""
        return {doc["_id"]: _decoded(doc) async for doc in self.db.outcomes.find({})}

    async def replace_outcome(self, doc: dict) -> None:
        """Make `doc` the outcome of its event, whatever was recorded before (only the partition's owner writes it)."""
        await self.db.outcomes.replace_one({"_id": doc["_id"]}, _encoded(doc), upsert=True)

    # --- registry: global reference data ---
    async def registry_entries(self, collection: str, codes: Iterable[str]) -> dict[str, dict]:
        return await _by_id(self.db[collection], codes)

    async def registry_codes(self, collection: str) -> list[str]:
        return [doc["_id"] async for doc in self.db[collection].find({}, {"_id": 1})]

    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        await self.db[REGISTRY[event_type]].update_one({"_id": entry["code"]}, {"$set": entry}, upsert=True)

    # --- tasks: versions of their state ---
    async def tasks_of(self, programmes: Iterable[str]) -> tuple[dict[str, dict], list[str]]:
        """The current state of every task of these programmes (those that left them included,
        so that an older version left behind is never taken for the current one), and the ids
        of the superseded versions found, still to be deleted."""
        codes = sorted(set(programmes))
        if not codes:
            return {}, []
        latest, stale = await self._latest({"$or": [{"programme": {"$in": codes}}, {"left": {"$in": codes}}]})
        return {task_id: task for task_id, task in latest.items() if task["programme"] in codes}, stale

    async def tasks_by_id(self, task_ids: Iterable[str]) -> tuple[dict[str, dict], list[str]]:
        ids = sorted(set(task_ids))
        return await self._latest({"task_id": {"$in": ids}}) if ids else ({}, [])

    async def _latest(self, query: dict) -> tuple[dict[str, dict], list[str]]:
        latest: dict[str, dict] = {}
        stale = []
        async for doc in self.db.task_versions.find(query):
            task_id, known = doc["task_id"], latest.get(doc["task_id"])
            if known is not None:
                stale.append(min(known, doc, key=lambda d: d["seq"])["_id"])
            if known is None or known["seq"] < doc["seq"]:
                latest[task_id] = doc
        return {task_id: _state(doc) for task_id, doc in latest.items()}, stale

    async def put_tasks(self, tasks: list[dict]) -> list[str]:
        """Insert the new versions; return the ids of those that were there already (stored by
        another writer: the versions they supersede are deleted later, see `drop_versions`)."""
        docs = [_version(task) for task in tasks]
        return [docs[i]["_id"] for i in await mongo.insert_many_once(self.db.task_versions, docs)]

    async def drop_versions(self, version_ids: list[str]) -> None:
        """Delete superseded versions (many at once: a delete costs about the same for one or hundreds)."""
        if version_ids:
            await self.db.task_versions.delete_many({"_id": {"$in": version_ids}})

    async def current_tasks(self) -> list[dict]:
        """Every task's current state (for tools and tests: the service reads by programme)."""
        return list((await self._latest({}))[0].values())

    # --- plans (few: one write each) ---
    async def plans_for(self, plan_keys: Iterable[str]) -> dict[str, dict]:
        return await _by_id(self.db.plans, plan_keys)

    async def put_plan(self, plan: dict) -> None:
        await self.db.plans.replace_one({"_id": plan["_id"]}, plan, upsert=True)

    # --- versioned state, supervisions ---
    async def versioned_for(self, collection: str, keys: Iterable[str]) -> dict[str, dict]:
        return await _by_id(self.db[collection], keys, {"version": 1})

    async def put_versioned(self, collection: str, key: str, fields: dict, version: str) -> None:
        """Set `fields` unless a later version is already in force."""
        await mongo.tolerating_duplicate(self.db[collection].update_one(
            {"_id": key, "version": {"$lt": version}}, {"$set": {**fields, "version": version}}, upsert=True))

    async def insert_many_once(self, collection: str, docs: list[dict]) -> None:
        await mongo.insert_many_once(self.db[collection], docs)

    # --- updates held until their plan arrives ---
    async def hold_many(self, docs: list[dict]) -> None:
        await mongo.insert_many_once(self.db.held, docs)

    async def held_for(self, *, task_ids: Iterable[str] = (), keys: Iterable[str] = ()) -> dict[str, dict]:
        """Held updates of these tasks, and those held under these event keys."""
        task_ids, keys = sorted(set(task_ids)), sorted(set(keys))
        held: dict[str, dict] = {}
        if task_ids:
            held.update({d["_id"]: d async for d in self.db.held.find({"task_id": {"$in": task_ids}})})
        if keys:
            held.update(await _by_id(self.db.held, keys))
        return held

    async def held_of(self, programmes: Iterable[str], limit: int = 1000) -> list[dict]:
        """The updates held longest of these programmes."""
        query = {"event.data.programme": {"$in": sorted(set(programmes))}}
        return [d async for d in self.db.held.find(query, sort=[("accepted_at", ASCENDING)], limit=limit)]

    async def forget_held(self, keys: list[str]) -> None:
        if keys:
            await self.db.held.delete_many({"_id": {"$in": keys}})


def _encoded(outcome: dict) -> dict:
    """An outcome is only ever read whole, by its event key: packed (see `mongo.pack`), but for
    when it was decided, which a replay of the log decides again (`nqt.fingerprint` leaves it out)."""
    return {"_id": outcome["_id"], "decided_at": outcome["decided_at"],
            "z": mongo.pack({k: v for k, v in outcome.items() if k not in ("_id", "decided_at")})}


def _decoded(outcome: dict) -> dict:
    """An outcome as decided, from its document (packed, or field by field before, changes as JSON)."""
    if "z" in outcome:
        return {"_id": outcome["_id"], "decided_at": outcome["decided_at"], **mongo.unpack(outcome["z"])}
    changes = outcome.get("changes")
    return {**outcome, "changes": kafka.loads(changes)} if isinstance(changes, bytes) else outcome


async def _by_id(collection, keys: Iterable[str], projection: dict | None = None) -> dict[str, dict]:
    """The documents with these `_id`s, in one query."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    return {doc["_id"]: doc async for doc in collection.find({"_id": {"$in": keys}}, projection)}
