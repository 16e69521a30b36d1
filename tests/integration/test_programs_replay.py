"""A plan's record read again after a crash (its tasks written, its outcome not yet
recorded) leaves the tasks as one reading does: their `seq`, which counts changes, included."""

from __future__ import annotations

from services.programs.store import ProgramsStore
from shared import mongo


async def test_the_same_plan_written_twice_counts_one_change(isolated):
    client = mongo.connect(isolated.mongo)
    try:
        store = ProgramsStore(client[f"{isolated.prefix}_programs"])
        plan = {"plan_id": "KH-1", "programme": "01", "source": "SO-KHDT"}
        tasks = [{"task_id": f"T{n}", "lead_unit": "SO-KHDT"} for n in range(3)]
        first = await store.put_plan(plan_key="SO-KHDT|KH-1", plan=plan, tasks=tasks, version="v1")
        again = await store.put_plan(plan_key="SO-KHDT|KH-1", plan=plan, tasks=tasks, version="v1")
        revised = await store.put_plan(plan_key="SO-KHDT|KH-1", plan=plan, tasks=tasks[:2], version="v2")
        back = await store.put_plan(plan_key="SO-KHDT|KH-1", plan=plan, tasks=tasks, version="v3")
        back_again = await store.put_plan(plan_key="SO-KHDT|KH-1", plan=plan, tasks=tasks, version="v3")
    finally:
        await client.close()
    seqs = lambda states: {t["_id"]: t["seq"] for t in states}
    assert seqs(first) == {"T0": 1, "T1": 1, "T2": 1}
    assert seqs(again) == seqs(first)                       # the replay changed nothing
    assert seqs(revised) == {"T0": 2, "T1": 2, "T2": 2}     # T2 dropped: one change
    assert seqs(back) == {"T0": 3, "T1": 3, "T2": 4}        # T2 brought back: restarted, then updated
    assert seqs(back_again) == seqs(back)
    assert {t["_id"]: (t["dropped"], t["status"]) for t in back_again}["T2"] == (False, "not_started")
