"""Reports as of a past cut-off, on FerretDB: the state the reports service builds from its
timeline is the one the history, filtered by both clocks, gives (the computation reports used
before the timeline, kept here as the reference), for random plans, revisions, status reports,
issuances, indicator values, unit reports and supervisions with random event and arrival
times, applied in batches as consumed (some twice, as after a crash), and random (cycle, known_at)."""

from __future__ import annotations

import asyncio
import random
import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import mongo
from shared.clock import Clock
from shared.cycles import parse_cycle
from shared.events import utc_iso

from services.reports import timeline
from services.reports.service import end_of_day
from services.reports.snapshot import Snapshot, latest_by_subject, tasks_from_history, unit_reports_from_history
from services.reports.store import FACT_KINDS, INDEXES, ReportsStore, _fact

START = datetime(2020, 12, 1, tzinfo=timezone.utc)
DAYS = 700
CYCLES = ["2021-Q1", "2021-Q2", "2021-H1", "2021-Q3", "2021", "2022-Q1", "2022-Q3", "2021-2025"]
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def history(batches: list[list[dict]]) -> list[dict]:
    """Every fact the changes applied say, once each: the whole history, as rows."""
    return list({row["_id"]: row for batch in batches for row in map(_fact, batch)
                 if row["kind"] in FACT_KINDS or row["kind"] == "task_report"}.values())


async def reference_as_of(store: ReportsStore, rows: list[dict], *, cycle: str, window_start: str, cut_off: str,
                          known_at: str) -> Snapshot:
    """How reports rebuilt a past state before the timeline: the whole history, filtered."""
    known = [row for row in rows if row["accepted_at"] <= known_at]
    facts: dict[str, list[dict]] = {k: [] for k in ("plan", "task_report", "programme_issued",
                                                    "indicator_value", "supervision")}
    for row in known:
        if row["kind"] in facts and row["event_time"] <= cut_off:
            facts[row["kind"]].append(row)
    plans, tasks = tasks_from_history(facts["plan"], facts["task_report"])
    values: dict[str, list[dict]] = {}
    for fact in latest_by_subject(facts["indicator_value"]).values():
        values.setdefault(fact["data"]["indicator"], []).append(fact["data"])
    reports = [row for row in known if row["kind"] == "unit_report" and row["data"]["cycle"] == cycle]
    return Snapshot(
        **await store._registry(),
        issued={f["subject"]: f["data"] for f in latest_by_subject(facts["programme_issued"]).values()},
        plans=plans, tasks=tasks, indicator_values=values, unit_reports=unit_reports_from_history(reports),
        supervisions=[f["data"] for f in facts["supervision"] if f["data"]["time"] >= window_start])


def normal(snapshot: Snapshot) -> Snapshot:
    """The same state whatever order its lists were read in (the report sorts what it lists)."""
    def order(items: list[dict]) -> list[dict]:
        return sorted(items, key=lambda item: sorted(item.items()).__repr__())
    return replace(snapshot, plans=order(snapshot.plans), tasks=order(snapshot.tasks),
                   supervisions=order(snapshot.supervisions))


def at(day: float) -> str:
    return utc_iso(START + timedelta(days=day))


def stamp(n: int, day: float, delay: float) -> dict:
    key = f"U:{n}"
    return {"event_key": key, "event_time": at(day), "accepted_at": at(day + delay), "version": f"{at(day)}|{key}"}


def changes(seed: int, n_reports: int) -> list[dict]:
    """A random term: plans (some rejected, some revised to drop a task), status reports and
    the other facts, with arrival delays from minutes to more than a year (a replay)."""
    rng = random.Random(seed)
    out, n = [], 0

    def delay() -> float:
        return rng.choice([rng.uniform(0, 0.01), rng.uniform(0, 20), rng.uniform(0, 500)])

    def add(kind: str, id: str, state: dict, programme: str | None = None, **extra) -> None:
        nonlocal n
        n += 1
        day = extra.pop("day", rng.uniform(0, DAYS))
        out.append({"kind": kind, "id": id, "programme": programme, "seq": 0, "state": state,
                    **stamp(n, day, delay()), **extra})

    add("programme", "01", {"code": "01", "title": "Chương trình 01"}, day=0)
    add("programme", "02", {"code": "02", "title": "Chương trình 02"}, day=0)
    add("unit", "SO-KHDT", {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"}, day=0)
    tasks = {}
    for p, plan in (("01", "A"), ("01", "B"), ("02", "C")):
        listed = [{"task_id": f"{plan}{i}", "title": f"Nhiệm vụ {plan}{i}", "lead_unit": "SO-KHDT",
                   "due_date": at(rng.uniform(0, DAYS))[:10]} for i in range(3)]
        tasks.update({t["task_id"]: p for t in listed})
        if rng.random() < 0.3:
            add("plan", f"U|{plan}", {"status": "rejected", "programme": p}, p)
        add("plan", f"U|{plan}", {"status": "submitted", "tasks": listed}, p)
        if rng.random() < 0.4:
            add("plan", f"U|{plan}", {"status": "submitted", "tasks": listed[:-1]}, p)
    for seq in range(1, n_reports + 1):
        task = rng.choice(sorted(tasks))
        status = rng.choice(["in_progress", "completed", "blocked", "not_started"])
        fact = {"status": status, "progress": float(rng.randint(0, 100))}
        add("task", task, {"programme": tasks[task], "lead_unit": "SO-KHDT", "title": "x", "due_date": "2021-06-30",
                           **fact}, tasks[task], seq=seq, fact=fact)
    add("programme_issued", "01", {"programme": "01", "issued_on": "2021-03-01"}, "01")
    for i in range(3):
        add("indicator_value", f"CT-01|2021-Q{i + 1}", {"indicator": "CT-01", "period": f"2021-Q{i + 1}",
                                                        "value": float(i)})
        add("unit_report", f"SO-KHDT|2021-Q{i + 1}", {"unit": "SO-KHDT", "cycle": f"2021-Q{i + 1}",
                                                      "time": at(rng.uniform(0, DAYS))})
        add("supervision", f"MTTQ:{i}", {"programme": "01", "kind": "giam_sat", "source": "MTTQ",
                                         "finding": "f", "time": at(rng.uniform(0, DAYS))}, "01")
    return out


def consumed(items: list[dict], rng: random.Random) -> list[list[dict]]:
    """In arrival order with some shuffling (several partitions, ingest replicas), in batches."""
    order = sorted(items, key=lambda c: (c["accepted_at"][:9], rng.random()))
    batches = []
    while order:
        size = rng.randint(1, 12)
        batches.append(order[:size])
        order = order[size:]
    return batches


@settings(max_examples=20, **SLOW)
@given(seed=st.integers(0, 10**6), n_reports=st.integers(5, 60),
       queries=st.lists(st.tuples(st.sampled_from(CYCLES), st.floats(0, DAYS + 600)), min_size=3, max_size=6))
def test_a_past_state_from_the_timeline_is_the_one_the_history_gives(infra_stack, seed, n_reports, queries):
    async def check():
        client = mongo.connect(infra_stack.mongo)
        db = client[f"{infra_stack.prefix}_timeline_{secrets.token_hex(4)}"]
        store, clock = ReportsStore(db), Clock()
        try:
            await mongo.ensure_indexes(db, INDEXES)
            rng = random.Random(seed)
            batches = consumed(changes(seed, n_reports), rng)
            for batch in batches:
                await store.apply_changes(batch)
                if rng.random() < 0.2:  # read again after a crash before the offsets were committed
                    await store.apply_changes(batch)
            for batch in batches[rng.randrange(len(batches)):]:  # and the group's offsets set back
                await store.apply_changes(batch)
            assert await timeline.ready(db)
            assert await db.history.count_documents({"kind": "task_report"}) == 0  # the timeline keeps them
            asked = []
            for code, known_day in queries:
                cycle = parse_cycle(code)
                asked.append(dict(cycle=code, window_start=end_of_day(cycle.start - timedelta(days=1), clock),
                                  cut_off=end_of_day(cycle.cut_off, clock), known_at=at(known_day)))
            want = [normal(await reference_as_of(store, history(batches), **kw)) for kw in asked]
            assert [normal(await store.as_of(**kw)) for kw in asked] == want
            await db.history.drop()  # the timeline alone answers
            assert [normal(await store.as_of(**kw)) for kw in asked] == want
        finally:
            await client.drop_database(db.name)
            await client.close()

    asyncio.run(check())


async def test_a_reports_database_older_than_the_timeline_keeps_reading_its_history(infra_stack, monkeypatch):
    client = mongo.connect(infra_stack.mongo)
    db = client[f"{infra_stack.prefix}_timeline_{secrets.token_hex(4)}"]
    store, clock, batches = ReportsStore(db), Clock(), consumed(changes(7, 40), random.Random(7))
    try:
        await mongo.ensure_indexes(db, INDEXES)
        with monkeypatch.context() as before:  # what a version without the timeline kept
            before.setattr(timeline, "record", lambda db, facts: asyncio.sleep(0))
            for batch in batches[: len(batches) // 2]:
                await store.apply_changes(batch)
        for batch in batches[len(batches) // 2:]:
            await store.apply_changes(batch)
        assert not await timeline.ready(db)
        cycle = parse_cycle("2021-Q3")
        kw = dict(cycle=cycle.code, window_start=end_of_day(cycle.start - timedelta(days=1), clock),
                  cut_off=end_of_day(cycle.cut_off, clock), known_at=at(DAYS + 600))
        assert normal(await store.as_of(**kw)) == normal(await reference_as_of(store, history(batches), **kw))
        assert await db.history.count_documents({"kind": "task_report"}) == \
            sum(row["kind"] == "task_report" for row in history(batches))  # where it reads them from
    finally:
        await client.drop_database(db.name)
        await client.close()
