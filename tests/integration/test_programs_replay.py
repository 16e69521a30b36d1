"""A plan's record read again after a crash (its tasks written, its outcome not yet
recorded) leaves the tasks as one reading does: their `seq`, which counts changes, included."""

from __future__ import annotations

from shared import mongo
from shared.events import parse_event
from tests import samples
from tests.programs_model import REGISTRY

from services.programs.service import Accepted, ProgramsService
from services.programs.store import INDEXES, ProgramsStore


class Crash(Exception):
    pass


class CrashesBeforeOutcomes(ProgramsStore):
    async def record_outcomes(self, docs):
        raise Crash


async def test_the_same_plan_written_twice_counts_one_change(isolated):
    client = mongo.connect(isolated.mongo)
    db = client[f"{isolated.prefix}_programs"]

    async def decided_twice(event_id: str, task_ids: list[str], time: str) -> dict[str, tuple[int, bool, str]]:
        plan = parse_event(samples.plan("SO-KHDT", event_id, "KH-1", "01",
                                        [samples.task(t, lead_unit="SO-KHDT") for t in task_ids], time=time))
        batch = [Accepted(plan, "2021-03-01T00:00:00.000000Z", event_id)]
        try:
            await ProgramsService(CrashesBeforeOutcomes(db)).process_batch(batch)
        except Crash:
            pass
        await ProgramsService(ProgramsStore(db)).process_batch(batch)  # a fresh replica reads it again
        return {t["_id"]: (t["seq"], t["dropped"], t["status"]) for t in await ProgramsStore(db).current_tasks()}

    try:
        await mongo.ensure_indexes(db, INDEXES)
        await ProgramsService(ProgramsStore(db)).process_batch(
            [Accepted(parse_event(raw), "2021-01-01T00:00:00.000000Z", f"r{i}") for i, raw in enumerate(REGISTRY)])
        first = await decided_twice("P1", ["T1", "T2", "T3"], "2021-03-01T08:00:00+07:00")
        revised = await decided_twice("P2", ["T1", "T2"], "2021-03-02T08:00:00+07:00")
        back = await decided_twice("P3", ["T1", "T2", "T3"], "2021-03-03T08:00:00+07:00")
    finally:
        await client.drop_database(db.name)
        await client.close()
    seqs = lambda states: {t: s[0] for t, s in states.items()}  # noqa: E731
    assert seqs(first) == {"T1": 1, "T2": 1, "T3": 1}
    assert seqs(revised) == {"T1": 2, "T2": 2, "T3": 2}      # T3 dropped: one change
    assert seqs(back) == {"T1": 3, "T2": 3, "T3": 4}         # T3 brought back: restarted, then updated
    assert back["T3"][1:] == (False, "not_started")
