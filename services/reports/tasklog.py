"""Each task's whole history of status reports, read by the task's id alone.

The history collection is keyed by event (`source:id`), and the local FerretDB reads by
index only an `_id` equality or `$in`, so a task's reports could only be found there by
scanning a million rows. So the reports consumer also files each report under the task and
the state number (`seq`) it was applied at: a document `task|seq` holding the reports applied
at that state (the one that made it, and any older report that arrived while it was current).
A task's history is then the documents `task|1` .. `task|seq` of its current `seq`, read by
`_id`: one indexed read of at most a few dozen documents, at any size of the history.

Writing is idempotent like the rest: a report that made a new state is inserted with its
document (a duplicate key: already there), any other is added to its document with
`$addToSet`, which a batch read again adds nothing to.

Each entry is stored as its JSON bytes (keys sorted: one entry, one byte string, so `$addToSet`
still sees a report added twice as the same): FerretDB 1.24 spends its time per field, and an
entry of a dozen fields, the sender nested, cost it more than the rest of a status report."""

from __future__ import annotations

import asyncio

import orjson
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo

TASK_LOG = "task_log"
IN_LIMIT = 5_000  # ids per `$in` (the local FerretDB narrows up to 10,000 by index)


def entry(change: dict) -> dict:
    """What the page shows of one applied report: both clocks, the sender, what it said."""
    fact = change["fact"]
    return {"event_key": change["event_key"], "event_time": change["event_time"],
            "accepted_at": change["accepted_at"], "version": change["version"], "source": change["event_key"].split(":", 1)[0],
            **{k: fact.get(k) for k in ("status", "progress", "as_of", "note", "reported_by")}}


def packed(change: dict) -> bytes:
    """An entry as stored: its JSON, keys sorted (bytes: BSON binary data)."""
    return orjson.dumps(entry(change), option=orjson.OPT_SORT_KEYS)


def unpacked(stored) -> dict:
    """An entry as stored: JSON bytes, or a document (written before the entries were packed)."""
    return stored if isinstance(stored, dict) else orjson.loads(stored)


def writes(logged: list[tuple[dict, bool]]) -> tuple[list[dict], list[UpdateOne]]:
    """The documents to insert (reports that made a new state) and the additions to existing ones."""
    fresh: dict[str, dict] = {}
    more: dict[str, list[bytes]] = {}
    for change, taken in logged:
        key = f"{change['id']}|{change['seq']}"
        if taken and key not in fresh:
            fresh[key] = {"_id": key, "entries": [packed(change)]}
        else:
            more.setdefault(key, []).append(packed(change))
    updates = [UpdateOne({"_id": key}, {"$addToSet": {"entries": {"$each": entries}}}, upsert=True)
               for key, entries in more.items()]
    return list(fresh.values()), updates


async def record(db: AsyncDatabase, logged: list[tuple[dict, bool]]) -> None:
    """File a batch's status reports (each with whether it made a new state of its task)."""
    fresh, updates = await asyncio.to_thread(writes, logged)  # pure CPU: the event loop answers requests meanwhile
    await mongo.insert_many_once(db[TASK_LOG], fresh)
    if updates:
        await db[TASK_LOG].bulk_write(updates, ordered=False)


async def history(db: AsyncDatabase, task_id: str, seq: int) -> list[dict]:
    """Every report applied to the task up to state `seq`, oldest first (by event time)."""
    ids = [f"{task_id}|{n}" for n in range(1, seq + 1)]
    entries = []
    for start in range(0, len(ids), IN_LIMIT):
        async for doc in db[TASK_LOG].find({"_id": {"$in": ids[start:start + IN_LIMIT]}}):
            entries += map(unpacked, doc["entries"])
    return sorted(entries, key=lambda e: (e["event_time"], e["version"]))
