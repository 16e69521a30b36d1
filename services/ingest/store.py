"""The ingest service's own collection: the status of every event a unit published,
kept from its acceptance and from the `programs.outcomes` records, and what each spreadsheet
import held (`imports`: each row's event id, so its outcomes can be told row by row).

Every write is idempotent by itself (no transactions) and tolerates any order of
arrival: an outcome is written under a status guard (`domain.replaceable`), so
the first final one wins, and "accepted" is only ever inserted, never written over
an outcome.

It also keeps the units' API keys (`keys`: only a hash of each key), the ids of
the signed requests seen lately (`webhook_ids`, unique per unit, to refuse a replay)
and its own copy of what it needs of the registry (`units`, `settings`: the term;
`programmes`, `indicators`, `tasks`: what a unit's templates are pre-filled with) from
the `programs.changes` records, and the cycles opened (`cycles`) from `reports.due`
(a service reads no other's collections)."""

from __future__ import annotations

from datetime import date, datetime

from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo
from shared.events import Envelope

from services.ingest import domain

INDEXES: mongo.IndexSpec = {
    "events": [],
    "keys": [IndexModel([("unit", 1)], name="unit")],
    "webhook_ids": [IndexModel([("seen_at", 1)], name="seen_at")],  # pruned by time (no TTL on FerretDB)
    "units": [],     # keyed by unit code (_id): no further index
    "settings": [],  # one document, "settings"
    "programmes": [], "indicators": [], "cycles": [],  # keyed by code: a few dozen each
    "tasks": [IndexModel([("lead_unit", 1)], name="lead_unit")],
    "imports": [],
}
UNIT_FIELDS = ("code", "name", "kind", "parent")
TASK_FIELDS = ("programme", "title", "lead_unit", "due_date", "status", "progress", "dropped")

DECISION = ("accepted_at", "decided_at", "accept_id", "event_time", "programme",
            "code", "message_vi", "message_en", "findings")


class IngestStore:
    def __init__(self, db: AsyncDatabase, accepted: mongo.GroupInsert | None = None):
        self.db = db
        # concurrent requests' "accepted" records go in one insert: the app shares one group
        self.accepted = accepted or mongo.GroupInsert(db.events)

    async def record_accepted(self, events: list[Envelope], *, accepted_at: str) -> None:
        """Mark the events accepted, in one round trip shared with concurrent requests. Only
        ever inserted (a duplicate key means a status is already there), so an outcome
        recorded first stays."""
        docs: dict[str, dict] = {}
        for e in events:  # the first of a key, as the upsert kept it: a batch may repeat one
            docs.setdefault(e.key, {"_id": e.key, "source": e.source, "id": e.id, "type": e.type,
                                    "status": domain.ACCEPTED, "accepted_at": accepted_at})
        await self.accepted.insert(list(docs.values()))

    async def record_outcome(self, outcome: dict) -> None:
        """Store one `programs.outcomes` record; reading it again changes nothing."""
        key, status = outcome["event_key"], outcome["outcome"]
        identity = {"source": outcome["source"], "id": outcome["id"], "type": outcome.get("type")}
        guard = {"_id": key, "status": {"$in": list(domain.replaceable(status))}}
        if status == domain.DUPLICATE:
            await self._count_duplicate(key, outcome, identity)
            await self.db.events.update_one(  # the document exists now: no upsert
                guard, {"$set": {"status": status, "decided_at": outcome.get("decided_at")}})
            return
        fields = {f: outcome[f] for f in DECISION if f in outcome}
        update = {"$set": {**identity, **fields, "status": status}}
        try:
            await self.db.events.update_one(guard, update, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):
                raise
            # No match, then the insert failed: either the key already has its outcome, or
            # its "accepted" record was inserted in between (a slow database makes the two
            # meet). Apply the outcome to the document now there, unless it has one already.
            await self.db.events.update_one(guard, update)

    async def _count_duplicate(self, key: str, outcome: dict, identity: dict) -> None:
        # One entry per duplicate submission (its accept_id), so a redelivered record counts once.
        count = {"$addToSet": {"duplicate_accept_ids": outcome["accept_id"]}}
        first = {**identity, "accepted_at": outcome.get("accepted_at")}
        try:
            await self.db.events.update_one({"_id": key}, {**count, "$setOnInsert": first}, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):
                raise
            await self.db.events.update_one({"_id": key}, count)  # a racing write inserted it first

    async def event(self, *, source: str, event_id: str) -> dict | None:
        """The status document of `source`'s event `event_id`; never another unit's."""
        return await self.db.events.find_one({"_id": f"{source}:{event_id}", "source": source})

    # --- credentials ---

    async def add_key(self, doc: dict) -> None:
        """Store a new key (its `_id` is the key id, its `hash` the key's hash; never the key)."""
        await self.db.keys.insert_one(doc)

    async def key(self, key_id: str) -> dict | None:
        return await self.db.keys.find_one({"_id": key_id})

    async def keys(self, unit: str | None = None) -> list[dict]:
        query = {"unit": unit} if unit else {}
        return await self.db.keys.find(query).sort([("unit", 1), ("created_at", 1)]).to_list(None)

    async def revoke_key(self, key_id: str, *, at: datetime) -> dict | None:
        """Revoke a key once (a second revocation keeps the first time); the key's document."""
        await self.db.keys.update_one({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}})
        return await self.key(key_id)

    async def webhook_id_use(self, *, unit: str, webhook_id: str) -> dict | None:
        """Where the unit already used this signed id (`record`: a Kafka record's place), if it did."""
        return await self.db.webhook_ids.find_one({"_id": f"{unit}:{webhook_id}"})

    async def remember_webhook_id(self, *, unit: str, webhook_id: str, seen_at: datetime,
                                  record: str | None = None) -> None:
        """Record an id the unit used. A unique insert, the first one stays: concurrent
        findAndModify on one document is not atomic on FerretDB."""
        await mongo.insert_once(self.db.webhook_ids, {"_id": f"{unit}:{webhook_id}", "unit": unit,
                                                      "seen_at": seen_at, "record": record})

    # --- ingest's copy of the registry ---

    async def put_unit(self, state: dict) -> None:
        doc = {f: state.get(f) for f in UNIT_FIELDS}
        await self.db.units.update_one({"_id": state["code"]}, {"$set": doc}, upsert=True)

    async def units(self) -> list[dict]:
        return await self.db.units.find({}).sort("_id", 1).to_list(None)

    async def unit_known(self, code: str) -> bool:
        return await self.db.units.find_one({"_id": code}) is not None

    async def put_term(self, term: dict) -> None:
        """Keep the term (ISO dates) of the registry's settings."""
        await self.db.settings.update_one({"_id": "settings"}, {"$set": {"term": term}}, upsert=True)

    async def term_start(self) -> date | None:
        doc = await self.db.settings.find_one({"_id": "settings"})
        start = ((doc or {}).get("term") or {}).get("start")
        return date.fromisoformat(start) if start else None

    async def forget_webhook_ids(self, *, seen_before: datetime) -> int:
        result = await self.db.webhook_ids.delete_many({"seen_at": {"$lt": seen_before}})
        return result.deleted_count

    # --- what a unit's templates are pre-filled with ---

    async def put_entry(self, collection: str, code: str, fields: dict) -> None:
        """Keep a programme or an indicator of the registry (its latest state)."""
        await self.db[collection].update_one({"_id": code}, {"$set": fields}, upsert=True)

    async def entries(self, collection: str) -> list[dict]:
        return await self.db[collection].find({}).sort("_id", 1).to_list(None)

    async def put_task(self, task_id: str, seq: int, state: dict) -> None:
        """Keep a task's latest state: a change read late (or again) never overwrites a newer one."""
        doc = {f: state.get(f) for f in TASK_FIELDS} | {"seq": seq}
        try:
            await self.db.tasks.update_one({"_id": task_id, "seq": {"$lt": seq}}, {"$set": doc}, upsert=True)
        except Exception as err:
            if not mongo.is_duplicate(err):  # a newer state is there already
                raise

    async def tasks_of(self, unit: str) -> list[dict]:
        """The tasks `unit` leads, that its plans still hold, by programme and task id."""
        docs = await self.db.tasks.find({"lead_unit": unit}).to_list(None)
        return sorted((d for d in docs if not d.get("dropped")), key=lambda d: (d["programme"], d["_id"]))

    async def put_cycle(self, due: dict) -> None:
        fields = {f: due[f] for f in ("window", "due_date", "expected_units")}
        await self.db.cycles.update_one({"_id": due["cycle"]}, {"$set": fields}, upsert=True)

    async def cycles(self) -> list[dict]:
        return await self.db.cycles.find({}).to_list(None)

    # --- spreadsheet imports ---

    async def put_import(self, doc: dict) -> None:
        """Keep what an uploaded file held; the same file again writes the same document."""
        await self.db.imports.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def import_of(self, *, unit: str, import_id: str) -> dict | None:
        return await self.db.imports.find_one({"_id": import_id, "unit": unit})

    async def events_of(self, keys: list[str]) -> dict[str, dict]:
        """The status documents of these event keys, by key."""
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 1000):  # bounded $in lists
            async for doc in self.db.events.find({"_id": {"$in": keys[start:start + 1000]}}):
                found[doc["_id"]] = doc
        return found
