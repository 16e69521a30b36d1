"""Claims among replicas and report numbers, on the real FerretDB (which does not make
concurrent updates of one document atomic): only unique inserts decide."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from pymongo import AsyncMongoClient

from shared.claims import Claims
from shared.events import utc_iso

from services.reports.store import ReportsStore

WINDOW = timedelta(minutes=2)
T0 = datetime(2021, 4, 5, 2, 0, tzinfo=timezone.utc)


async def database(isolated):
    client = AsyncMongoClient(isolated.mongo, tz_aware=True)
    return client, client[f"{isolated.prefix}_reports"]


async def test_of_replicas_racing_over_a_stale_claim_exactly_one_takes_it_over(isolated):
    client, db = await database(isolated)
    try:
        await db.claims.insert_one({"_id": "issue|2021-Q1#0", "subject": "issue|2021-Q1", "generation": 0,
                                    "holder": "crashed", "refreshed_at": utc_iso(T0)})
        replicas = [Claims(db.claims, holder=f"replica-{i}", stale_after=WINDOW) for i in range(4)]
        later = T0 + 2 * WINDOW
        taken = await asyncio.gather(*(r.take("issue|2021-Q1", later) for r in replicas))
        winners = [claim for claim in taken if claim is not None]
        assert len(winners) == 1 and winners[0].generation == 1
        assert [await r.holds(winners[0]) for r in replicas] == [True] * 4
    finally:
        await client.close()


async def test_a_claim_refreshed_within_the_window_is_never_taken_over(isolated):
    client, db = await database(isolated)
    try:
        holder = Claims(db.claims, holder="holder", stale_after=WINDOW)
        other = Claims(db.claims, holder="other", stale_after=WINDOW)
        claim = await holder.take("issue|2021-Q2", T0)
        for step in range(1, 6):  # the holder refreshes every 0.9 window; the other keeps trying just after
            now = T0 + step * 0.9 * WINDOW
            await holder.refresh(claim, now)
            assert await other.take("issue|2021-Q2", now + 0.5 * WINDOW) is None
        assert await holder.holds(claim)
        silent_since = T0 + 5 * 0.9 * WINDOW            # then the holder dies
        taken = await other.take("issue|2021-Q2", silent_since + WINDOW + timedelta(seconds=1))
        assert taken is not None and taken.generation == 1
        assert not await holder.holds(claim)            # so it must not go on with the work
    finally:
        await client.close()


async def test_report_numbers_belong_to_their_cycle_and_run_on_without_gaps(isolated):
    client, db = await database(isolated)
    try:
        store = ReportsStore(db)
        one_cycle = await asyncio.gather(*(store.number_for("2020-2025", "2021-Q1") for _ in range(4)))
        two_cycles = await asyncio.gather(store.number_for("2020-2025", "2021-Q2"),
                                          store.number_for("2020-2025", "2021-H1"))
        assert one_cycle == [1, 1, 1, 1] and sorted(two_cycles) == [2, 3]
        assert await store.number_for("2020-2025", "2021-Q1") == 1                # a retry keeps its number
        assert await store.number_for("2020-2025", "2021") == 4
        assert sorted([d["n"] async for d in db.numbers.find({"term": "2020-2025"})]) == [1, 2, 3, 4]
        await db.counters.insert_one({"_id": "BC|2026-2030", "value": 7})         # numbered the old way
        assert await store.number_for("2026-2030", "2026-Q1") == 8
    finally:
        await client.close()
