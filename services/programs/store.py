"""MongoDB access for the programs service's own collections.

The replica that holds a programme's partition is its only writer: it reads the state it
needs once, decides a batch in memory and writes the batch's effects with a few bulk
commands. Every write is idempotent by itself (no transactions): rows are inserted under an
`_id` derived from the event key, and task states are kept as a changelog plus checkpoints per
programme (`shared.statelog`: each state carries its `seq`, the highest wins), so a crash at
any point leaves either the old or the new state, never none, and reading the batch again
changes nothing. A task is found by id through `task_homes`, a row per programme it has been in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from shared import kafka, mongo, statelog
from shared.statelog import Known, StateLog

INDEXES: mongo.IndexSpec = {
    "task_states": statelog.INDEXES, "task_homes": [IndexModel([("task_id", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "outcomes": [], "outcome_packs": [],
    "held": [IndexModel([("task_id", ASCENDING)]), IndexModel([("accepted_at", ASCENDING)])],
    "issuances": [], "indicator_values": [], "unit_reports": [],
    "supervisions": [IndexModel([("programme", ASCENDING)])],
    "units": [], "programmes": [], "indicators": [], "settings": [],
}

OUTCOMES_PER_PACK = 1_000  # a thousand status reports' outcomes: 1.8 MB of JSON, tens of KB packed

REGISTRY = {"registry.unit": "units", "registry.programme": "programmes", "registry.indicator": "indicators",
            "registry.settings": "settings"}


def _version_state(version: dict) -> dict:
    """A task's state from a version of it stored before the changelog (packed, or field by field)."""
    return {**(mongo.unpack(version["z"]) if "z" in version else version), "_id": version["task_id"]}


def _home(task_id: str, programme: str) -> dict:
    """A row saying a task has been in a programme (inserted once, never changed)."""
    return {"_id": f"{task_id}|{programme}", "task_id": task_id, "programme": programme}


class ProgramsStore:
    def __init__(self, db):
        self.db = db
        self.states = StateLog(db.task_states, key="_id", group=lambda task: task["programme"])
        self.homes, self.versions = db.task_homes, db.task_versions  # the latter: before the changelog
        self.migrated = False

    # --- outcomes: packed by the batch, each filed under its event key ---
    async def outcomes_for(self, event_keys: Iterable[str]) -> dict[str, dict]:
        return await self._resolved(await _by_id(self.db.outcomes, event_keys))

    async def record_outcomes(self, docs: list[dict]) -> dict[str, dict]:
        """Pack the batch's outcomes once, then file each under its event key in one round trip;
        return those already filed by someone else (a replica that held the partition before),
        which stand instead of ours. A crash between the two leaves a pack nothing names, and the
        records read again are decided again."""
        if not docs:
            return {}
        parts = [docs[i:i + OUTCOMES_PER_PACK] for i in range(0, len(docs), OUTCOMES_PER_PACK)]
        packs = [_pack(part) for part in parts]
        await self.db.outcome_packs.insert_many(packs)
        filed = [{"_id": doc["_id"], "pack": pack["_id"]} for pack, part in zip(packs, parts) for doc in part]
        theirs = await mongo.insert_many_once(self.db.outcomes, filed)
        return await self.outcomes_for([docs[i]["_id"] for i in theirs]) if theirs else {}

    async def all_outcomes(self) -> dict[str, dict]:
        """Every outcome, by event key (for tests: the service reads them by key)."""
        return {outcome["_id"]: outcome async for outcome in self.each_outcome()}

    async def each_outcome(self) -> AsyncIterator[dict]:
        """Every outcome, one pack unpacked at a time (for tools: a whole term's million outcomes,
        each with its changes, would take gigabytes held together)."""
        filed: dict[str, str] = {}  # event key -> the pack its outcome stands in
        async for doc in self.db.outcomes.find({}, batch_size=5000):
            if "pack" in doc:
                filed[doc["_id"]] = doc["pack"]
            else:
                yield _decoded(doc)
        async for pack in mongo.find_packed(self.db.outcome_packs, {}):
            for key, outcome in mongo.unpack(pack["z"]).items():
                if filed.get(key) == pack["_id"]:  # not a pack a crash left, nor one replaced since
                    yield {"_id": key, **outcome}

    async def replace_outcome(self, doc: dict) -> None:
        """Make `doc` the outcome of its event, whatever was recorded before (only the partition's owner writes it)."""
        pack = _pack([doc])
        await self.db.outcome_packs.insert_one(pack)
        await self.db.outcomes.replace_one({"_id": doc["_id"]}, {"_id": doc["_id"], "pack": pack["_id"]}, upsert=True)

    async def _resolved(self, filed: dict[str, dict]) -> dict[str, dict]:
        """The outcomes these filed documents name (in their packs), or hold (stored before the packs)."""
        named = {doc["pack"] for doc in filed.values() if "pack" in doc}
        packs = await _by_id(self.db.outcome_packs, named)
        unpacked = {key: mongo.unpack(packs[key]["z"]) for key in named}
        return {key: {"_id": key, **unpacked[doc["pack"]][key]} if "pack" in doc else _decoded(doc)
                for key, doc in filed.items()}

    # --- registry: global reference data ---
    async def registry_entries(self, collection: str, codes: Iterable[str]) -> dict[str, dict]:
        return await _by_id(self.db[collection], codes)

    async def registry_codes(self, collection: str) -> list[str]:
        return [doc["_id"] async for doc in self.db[collection].find({}, {"_id": 1})]

    async def put_registry_entry(self, event_type: str, entry: dict) -> None:
        await self.db[REGISTRY[event_type]].update_one({"_id": entry["code"]}, {"$set": entry}, upsert=True)

    # --- tasks: their states, as a changelog plus checkpoints per programme ---
    async def tasks_of(self, programmes: Iterable[str], known: Known) -> dict[str, dict]:
        """The current state of every task of these programmes; `known` learns where they are kept."""
        await self._migrate_versions()
        return await self.states.read(programmes, known)

    async def tasks_by_id(self, task_ids: Iterable[str]) -> dict[str, dict]:
        """The current state of these tasks, wherever they are (read from the programmes they have been in)."""
        ids = sorted(set(task_ids))
        if not ids:
            return {}
        await self._migrate_versions()
        homes = {doc["programme"] async for doc in self.homes.find({"task_id": {"$in": ids}})}
        found = await self.states.read(homes) if homes else {}
        return {task_id: found[task_id] for task_id in ids if task_id in found}

    async def put_tasks(self, tasks: list[dict], *, moved: list[dict], known: Known) -> None:
        """Log the batch's task states (one document); the tasks new to a programme (`moved`) get
        their home first, so that a task is always found by id."""
        await mongo.insert_many_once(self.homes, [_home(t["_id"], t["programme"]) for t in moved])
        await self.states.append(tasks, known)

    async def fold_tasks(self, tasks: Collection[dict], programmes: set[str], known: Known) -> None:
        """Checkpoint the programmes held (their tasks' states: `tasks`) when the changelog has grown enough."""
        await self.states.fold_if_due(tasks, programmes, known)

    async def current_tasks(self) -> list[dict]:
        """Every task's current state (for tools and tests: the service reads by programme)."""
        await self._migrate_versions()
        return list((await self.states.read()).values())

    async def _migrate_versions(self) -> None:
        """A database from before the changelog keeps task versions (`task|seq`) in `task_versions`:
        their latest become checkpoints with homes, then the versions go (a crash before: done again)."""
        if self.migrated:
            return
        await self.states.take_over(self.versions, _version_state, then=lambda tasks: mongo.insert_many_once(
            self.homes, [_home(t["_id"], p) for t in tasks for p in self.states.tags(t)]))
        self.migrated = True

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


def _pack(outcomes: list[dict]) -> dict:
    """Outcomes are only ever read whole, by event key: a batch's are packed together (see
    `mongo.pack`), by key, in one compression instead of one per outcome (a fifth of the
    service's time when each was packed alone). Each as it is, its `_id` included (the key
    it is filed under), and keys unsorted: they are compared only once unpacked, and sorting
    them cost more than compressing them."""
    return {"_id": str(ObjectId()), "z": mongo.pack({o["_id"]: o for o in outcomes}, sort_keys=False)}


def _decoded(outcome: dict) -> dict:
    """An outcome as decided, from a document of before the packs (packed alone, or field by field
    before that, changes as JSON)."""
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
