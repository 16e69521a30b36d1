"""A task's history of status reports, as the web view reads it, against the real FerretDB."""

from __future__ import annotations

from services.reports import tasklog
from services.reports.settings import ReportsSettings
from shared import mongo


def _report(key: str, seq: int, at: str, progress: float) -> dict:
    return {"id": "T-1", "seq": seq, "event_key": key, "event_time": at, "accepted_at": at, "version": f"{at}|{key}",
            "fact": {"status": "in_progress", "progress": progress, "reported_by": {"name": "A", "position": "B"}}}


async def test_a_history_holds_reports_filed_before_and_after_entries_were_packed_once_each(isolated):
    settings = isolated.settings(ReportsSettings)
    client = mongo.connect(settings.mongo_url)
    db = client[settings.database("reports")]
    first = _report("SO-KHDT:1", 1, "2021-03-01T00:00:00.000000Z", 10.0)
    try:
        # as the consumer filed it before: the entry a document of its own fields
        await db[tasklog.TASK_LOG].insert_one({"_id": "T-1|1", "task_id": "T-1", "seq": 1,
                                               "entries": [tasklog.entry(first)]})
        batch = [(_report("SO-KHDT:2", 2, "2021-04-01T00:00:00.000000Z", 20.0), True),
                 (_report("SO-KHDT:0", 2, "2021-02-01T00:00:00.000000Z", 5.0), False)]  # late: no new state
        await tasklog.record(db, batch)
        await tasklog.record(db, batch)  # read again after a crash: nothing added
        stored = await db[tasklog.TASK_LOG].find_one({"_id": "T-1|2"})
        history = await tasklog.history(db, "T-1", 2)
    finally:
        await client.close()
    assert [(e["event_key"], e["progress"], e["reported_by"]["name"]) for e in history] == [
        ("SO-KHDT:0", 5.0, "A"), ("SO-KHDT:1", 10.0, "A"), ("SO-KHDT:2", 20.0, "A")]
    # FerretDB's cost is per field: each entry is one (its JSON), not a dozen
    assert set(stored) == {"_id", "entries"} and all(isinstance(e, bytes) for e in stored["entries"])
