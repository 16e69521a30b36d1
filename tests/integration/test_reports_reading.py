"""What a reader of the live state (a page, the status, the task lists) sees while a batch is being
applied in the same process: the state before the batch or after it, never a batch half applied.
A batch yields to the event loop between its changes (a database write for a unit or a plan), and
requests are served meanwhile."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from shared import mongo
from shared.clock import Clock

from services.reports import store as reports_store
from services.reports.owned import Holdings
from services.reports.service import ReportsService
from services.reports.store import INDEXES, ReportsStore
from tests.integration.test_reports import task_state

WINDOW_START = "2021-03-31T17:00:00.000000Z"


def as_change(task: str, progress: float) -> dict:
    return {"kind": "task", "id": task, "programme": "02", "seq": 1, "state": task_state("in_progress", progress)}


UNIT = {"kind": "unit", "id": "SO-KHDT", "programme": None, "seq": 0, "state": {"code": "SO-KHDT", "name": "Sở KH&ĐT"}}


async def test_a_page_or_the_status_read_while_a_batch_is_applied_sees_all_of_it_or_none(isolated, monkeypatch):
    entered, go = asyncio.Event(), asyncio.Event()
    written = reports_store.APPLIERS["unit"]

    async def unit_written_slowly(store: ReportsStore, change: dict) -> None:
        entered.set()  # the batch is between its changes: T-1 applied, T-2 not yet
        await go.wait()
        await written(store, change)

    monkeypatch.setitem(reports_store.APPLIERS, "unit", unit_written_slowly)
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, INDEXES)
        holdings = Holdings()
        store = ReportsStore(db, holdings)
        clock = Clock(fixed=datetime(2021, 4, 5, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
        await store.live(cycle="2021-Q2", window_start=WINDOW_START)  # the read model held in memory
        applying = asyncio.create_task(store.apply_changes([as_change("T-1", 10), UNIT, as_change("T-2", 20)]))
        await entered.wait()
        page = asyncio.create_task(store.tasks_where(programme="02"))
        status = asyncio.create_task(ReportsService(store, clock).live_status())
        for _ in range(10):  # every step the readers could take without the batch moving on
            await asyncio.sleep(0)
        read_between = page.done() or status.done()
        go.set()
        await applying
        tasks, totals = await page, (await status)["totals"]["tasks"]
    finally:
        await client.close()
    assert not read_between
    assert sorted(t["task_id"] for t in tasks) == ["T-1", "T-2"]
    assert totals["total"] == 2 and totals["in_progress"] == 2
