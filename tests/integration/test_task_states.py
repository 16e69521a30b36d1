"""Task states as a changelog plus checkpoints on FerretDB: a database from before (a document per
task version) is taken over at the first load, and many batches later the states still load from
a few documents, as they were written."""

from __future__ import annotations

from unittest.mock import patch

from shared import mongo, statelog
from shared.statelog import Known

from services.programs.store import INDEXES as PROGRAMS_INDEXES, ProgramsStore
from services.reports.store import INDEXES as REPORTS_INDEXES, ReportsStore

TASK = {"plan": "SO-KHDT|KH", "lead_unit": "SO-KHDT", "due_date": "2021-06-30", "title": "Nhiệm vụ"}


async def test_task_versions_of_an_older_programs_database_become_its_task_states(isolated):
    """Two versions of one task (one packed, one field by field) and a task that moved programme:
    the latest states load by programme and by id, and the versions are gone."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_programs"]
        await mongo.ensure_indexes(db, PROGRAMS_INDEXES)
        old = {"status": "not_started", "progress": 0.0, "seq": 1, "programme": "02", **TASK}
        new = {**old, "status": "in_progress", "progress": 40.0, "seq": 2}
        moved = {**old, "programme": "03", "left": ["02"], "seq": 3}
        await db.task_versions.insert_many([
            {"_id": "T-1|1", "task_id": "T-1", "programme": "02", "seq": 1, "z": mongo.pack(old)},
            {"_id": "T-1|2", "task_id": "T-1", **new},
            {"_id": "T-2|3", "task_id": "T-2", "programme": "03", "left": ["02"], "seq": 3, "z": mongo.pack(moved)}])
        store = ProgramsStore(db)
        of_02 = await store.tasks_of(["02"], Known())
        by_id = await ProgramsStore(db).tasks_by_id(["T-2", "T-9"])
        left = await db.task_versions.count_documents({})
    finally:
        await client.close()
    assert {t: (s["status"], s["seq"]) for t, s in of_02.items()} == {"T-1": ("in_progress", 2)}
    assert {t: (s["programme"], s["seq"]) for t, s in by_id.items()} == {"T-2": ("03", 3)}
    assert left == 0


async def test_task_versions_of_an_older_reports_database_become_its_task_states(isolated):
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, REPORTS_INDEXES)
        version = lambda seq, progress: {"_id": f"T-1|{seq}", "task_id": "T-1", "programme": "02", "seq": seq,
                                         "status": "in_progress", "progress": progress, **TASK}
        await db.tasks.insert_many([version(1, 10.0), {"_id": "T-1|2", "z": mongo.pack(version(2, 20.0))}])
        store = ReportsStore(db)
        await store.live(cycle="2021-Q1", window_start="2020-12-14T17:00:00.000000Z")
        held = {t: s["progress"] for t, s in store.holdings.live.tasks.items()}
        left = await db.tasks.count_documents({})
    finally:
        await client.close()
    assert held == {"T-1": 20.0} and left == 0


async def test_many_batches_later_the_states_load_from_a_few_documents_as_written(isolated):
    """A batch per task update, folded now and then: a replica starting afresh loads every task's
    last state, from a checkpoint per programme and what was logged since."""
    change = lambda n, seq: {"kind": "task", "id": f"T-{n % 30}", "programme": "0" + "23"[n % 2], "seq": seq,
                             "state": {**TASK, "programme": "0" + "23"[n % 2], "status": "in_progress",
                                       "progress": float(seq), "lead_person": {"name": "An", "position": "CV"}}}
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, REPORTS_INDEXES)
        writer = ReportsStore(db)
        with patch.object(statelog, "FOLD_FLOOR", 20):
            for n in range(300):
                await writer.apply_changes([change(n, n // 30 + 1)])
        documents = await db.task_states.count_documents({})
        fresh = ReportsStore(db)
        await fresh.live(cycle="2021-Q1", window_start="2020-12-14T17:00:00.000000Z")
    finally:
        await client.close()
    assert {t: s["seq"] for t, s in fresh.holdings.live.tasks.items()} == {f"T-{n}": 10 for n in range(30)}
    assert 2 <= documents <= 2 + 20  # a checkpoint per programme, and fewer logged than make a fold
