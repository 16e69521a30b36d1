"""Finding, updating and deleting by `_id` means the same on the local FerretDB (whose `_id`
lookups are narrowed through the index, deploy/local/ferretdb/) as on MongoDB; documents of
packed values are read back whatever their total size."""

from __future__ import annotations

import base64
import os

from bson import ObjectId

from services.programs.store import ProgramsStore
from shared import mongo

OID = ObjectId()
DOCS = [{"_id": "KH-01-T1", "seq": 1, "status": "in_progress"},
        {"_id": "KH-01-T2", "seq": 3, "status": "done"},
        {"_id": OID, "seq": 1, "status": "done"},
        {"_id": 7, "seq": 1, "status": "done"},
        {"_id": {"plan": "KH-01", "task": "T3"}, "seq": 2, "status": "overdue"}]


async def test_lookups_by_id_with_other_conditions_and_in_lists(isolated):
    client = mongo.connect(isolated.mongo)
    try:
        tasks = client[f"{isolated.prefix}_lookup"].tasks
        await tasks.insert_many([dict(d) for d in DOCS])
        ids = lambda docs: sorted(str(d["_id"]) for d in docs)
        find = lambda flt: tasks.find(flt).to_list()

        assert ids(await find({"_id": "KH-01-T1"})) == ["KH-01-T1"]
        assert ids(await find({"_id": "KH-01-T1", "seq": 1})) == ["KH-01-T1"]
        assert await find({"_id": "KH-01-T1", "seq": 2}) == []           # the other condition still holds
        assert await find({"_id": "KH-01-T9"}) == []
        assert ids(await find({"_id": OID, "status": "done"})) == [str(OID)]
        assert ids(await find({"_id": {"$in": ["KH-01-T1", "KH-01-T2", "nope"]}})) == ["KH-01-T1", "KH-01-T2"]
        assert ids(await find({"_id": {"$in": ["KH-01-T2", 7, OID]}})) == sorted(["KH-01-T2", "7", str(OID)])
        assert ids(await find({"_id": {"$in": ["KH-01-T1", "KH-01-T2"]}, "status": "done"})) == ["KH-01-T2"]
        assert ids(await find({"_id": {"plan": "KH-01", "task": "T3"}})) == [str(DOCS[-1]["_id"])]
        assert ids(await find({"_id": {"$gte": "KH-01-T2"}})) == ["KH-01-T2"]
        assert len(await find({"status": "done"})) == 3

        guarded = await tasks.update_one({"_id": "KH-01-T2", "seq": 2}, {"$inc": {"seq": 1}})
        assert guarded.matched_count == 0                                 # moved since: not written
        guarded = await tasks.update_one({"_id": "KH-01-T2", "seq": 3}, {"$inc": {"seq": 1}})
        assert guarded.modified_count == 1
        assert (await tasks.find_one({"_id": "KH-01-T2"}))["seq"] == 4
        many = await tasks.update_many({"_id": {"$in": ["KH-01-T1", "KH-01-T2"]}, "seq": {"$lt": 4}},
                                       {"$set": {"status": "late"}})
        assert many.modified_count == 1
        assert (await tasks.find_one({"_id": "KH-01-T1"}))["status"] == "late"

        deleted = await tasks.delete_many({"_id": {"$in": ["KH-01-T1", 7]}})
        assert deleted.deleted_count == 2
        assert sorted(map(str, await tasks.distinct("_id"))) == sorted(["KH-01-T2", str(OID),
                                                                         str(DOCS[-1]["_id"])])
    finally:
        await client.close()


async def test_every_outcome_is_read_back_when_their_packs_outweigh_a_reply(isolated):
    """FerretDB 1.24 answers a getMore with 250 documents whatever their size, and the client
    refuses a reply over 48 MB: packs of a whole term's outcomes (after the first reply's 101,
    250 of 220 KB here) must still all come back, as `nqt replay --compare` reads them."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_packed"]
        packs = [{"_id": f"p{n:03}", "z": mongo.pack({f"k{n}": {"_id": f"k{n}", "outcome": "applied",
                                                                "note": base64.b64encode(os.urandom(220_000)).decode()}})}
                 for n in range(360)]
        assert sum(len(p["z"]) for p in packs[101:351]) > 48_000_000
        for start in range(0, len(packs), 20):
            await db.outcome_packs.insert_many(packs[start:start + 20])
        await db.outcomes.insert_many([{"_id": f"k{n}", "pack": f"p{n:03}"} for n in range(360)])
        outcomes = await ProgramsStore(db).all_outcomes()
    finally:
        await client.drop_database(f"{isolated.prefix}_packed")
        await client.close()
    assert sorted(outcomes) == sorted(f"k{n}" for n in range(360))
    assert {o["outcome"] for o in outcomes.values()} == {"applied"}
