"""An outcome whose upsert meets the event's "accepted" record being inserted at the same
moment (the insert wins, the upsert fails as a duplicate key) is still recorded."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.ingest.store import IngestStore


class RacingEvents:
    """A collection where the event's "accepted" record is inserted just before the first upsert lands."""

    def __init__(self):
        self.docs: dict[str, dict] = {}

    async def update_one(self, query, update, upsert=False):
        doc = self.docs.get(query["_id"])
        if doc is None and upsert:
            self.docs[query["_id"]] = {"_id": query["_id"], "status": "accepted"}  # the racing insert
            raise DuplicateKeyError("E11000 duplicate key")
        if doc is not None and doc.get("status") in query["status"]["$in"]:
            doc.update(update["$set"])


class Db:
    def __init__(self):
        self.events = RacingEvents()


async def test_an_outcome_racing_the_accepted_record_is_kept():
    db = Db()
    await IngestStore(db).record_outcome({"event_key": "SO-KHDT:E1", "source": "SO-KHDT", "id": "E1",
                                          "outcome": "applied", "accept_id": "a1"})
    assert db.events.docs["SO-KHDT:E1"]["status"] == "applied"
