"""The reports read model kept from real `programs.changes` records."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiokafka import TopicPartition

from shared import kafka, mongo
from shared.clock import Clock
from shared.cycles import due_date
from shared.events import utc_iso
from tests import kafkatools
from tests.integration.conftest import running
from tests.unit.test_consumer_errors import FakeBroker, FakeConsumer, Record, letters_for

from services.reports import handlers, tasklog, timeline, timeline_query
from services.reports.app import build
from services.reports.owned import Holdings
from services.reports.service import ReportsService, reporting_cycle
from services.reports.settings import ReportsSettings
from services.reports.store import INDEXES, ReportsStore

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def change(kind: str, id: str, state: dict, programme: str | None = None, seq: int = 0) -> bytes:
    return kafka.dumps({"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state,
                        "event_key": f"X:{id}:{seq}", "event_time": "2021-03-01T00:00:00.000000Z",
                        "accepted_at": "2021-03-01T00:00:00.000000Z",
                        "version": f"2021-03-01T00:00:00.000000Z|X:{id}:{seq}"})


def task_state(status: str, progress: float, due: str = "2021-06-30") -> dict:
    return {"programme": "02", "plan": "SO-KHDT|KH", "lead_unit": "SO-KHDT", "due_date": due, "status": status,
            "progress": progress, "title": "Nhiệm vụ", "lead_person": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}}


async def test_status_follows_changes_and_an_older_state_never_wins(isolated):
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False)
    records = [
        change("programme", "02", {"code": "02", "title": "Chương trình 02", "lead_unit": "UBND"}),
        change("unit", "SO-KHDT", {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"}),
        change("plan", "SO-KHDT|KH", {"status": "submitted"}, programme="02"),
        change("plan", "SO-TC|KH", {"status": "rejected"}, programme="02"),
        change("task", "T-1", task_state("completed", 100), programme="02", seq=3),
        change("task", "T-1", task_state("in_progress", 50), programme="02", seq=2),  # stale, arrives late
        change("task", "T-2", task_state("not_started", 0, due="2021-03-31"), programme="02", seq=1),
        change("task", "T-3", task_state("in_progress", 25), programme="02", seq=1),
    ]
    async with running(build(settings)) as client:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, records, key=b"02")

        async def status():
            return (await client.get("/v1/status")).json()

        def settled(body):
            p = body["programmes"][0] if body["programmes"] else None
            return p and p["tasks"]["total"] == 3 and p["plans"]["rejected"] == 1

        body = await kafkatools.eventually(status, settled)
        # a later batch shows too, in the status the background job makes once it is applied
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes,
                                 [change("task", "T-3", task_state("completed", 100), programme="02", seq=2)],
                                 key=b"02")
        later = await kafkatools.eventually(status, lambda b: b["programmes"][0]["tasks"]["completed"] == 2)
        pages = (await client.get("/v1/status/tasks", params={"list": "nearly"})).status_code, \
            (await client.get("/v1/status/tasks", params={"offset": -1})).status_code
    assert later["programmes"][0]["tasks"]["in_progress"] == 0 and pages == (422, 422)
    p = body["programmes"][0]
    assert body["as_of"] == "2021-04-05"
    assert p["plans"] == {"expected": 0, "submitted": 1, "rejected": 1}
    assert p["tasks"] == {"total": 3, "not_started": 1, "in_progress": 1, "completed": 1, "blocked": 0,
                          "cancelled": 0, "overdue": 1}
    assert p["progress_pct"] == round((100 + 0 + 25) / 3, 1)
    assert body["cycle"] == "2021-Q1"  # on 5 April the first quarter is being reported on
    assert [(u["code"], u["reports"], u["tasks_overdue"]) for u in body["units"]] == [
        ("SO-KHDT", {"expected": 1, "on_time": 0, "late": 0, "missing": 1}, 1)]


async def test_a_change_of_a_kind_reports_does_not_know_is_dead_lettered_and_the_rest_go_through(isolated):
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False,
                                 topic_partitions=1)
    records = [change("programme", "02", {"code": "02", "title": "Chương trình 02", "lead_unit": "UBND"}),
               change("budget", "02", {"amount": 5}, programme="02"),
               change("task", "T-1", task_state("in_progress", 40), programme="02", seq=1)]
    async with running(build(settings)) as client:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, records, key=b"02")
        dead = await kafkatools.read_topic(settings.kafka_bootstrap, settings.topics.dlq(settings.topics.changes),
                                           decode=False, until=lambda rs: len(rs) >= 1, timeout=60)

        async def status():
            return (await client.get("/v1/status")).json()

        body = await kafkatools.eventually(status, lambda b: b["totals"]["tasks"]["total"] == 1)
    assert len(dead) == 1 and b'"budget"' in dead[0].value
    assert "budget" in dict(dead[0].headers)["nqt-dlq-error-message"].decode()
    assert body["programmes"][0]["progress_pct"] == 40.0


async def test_task_states_written_together_keep_the_newest_whoever_writes_first(isolated):
    """Two replicas (say, either side of a rebalance) write overlapping batches of task states
    at once: each task ends at its highest seq, new tasks included."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, INDEXES)
        first, second = ReportsStore(db), ReportsStore(db)
        as_change = lambda task, seq, progress: {"kind": "task", "id": task, "programme": "02", "seq": seq,
                                                 "state": task_state("in_progress", progress)}
        await first.apply_changes([as_change("T-1", 2, 20)])
        await asyncio.gather(
            first.apply_changes([as_change(f"T-{n}", 5, 50) for n in range(1, 40)]),
            second.apply_changes([as_change(f"T-{n}", 4 + 2 * (n % 2), 60 * (n % 2)) for n in range(1, 40)]))
        await first.apply_changes([as_change("T-1", 3, 30), as_change("T-2", 9, 90), as_change("T-2", 8, 80)])
        restarted = ReportsStore(db)  # a replica that reads the read model afresh
        await restarted.live(cycle="2021-Q1", window_start="2020-12-14T17:00:00.000000Z")
        seqs = {key: (d["seq"], d["progress"]) for key, d in restarted.holdings.live.tasks.items()}
    finally:
        await client.close()
    expected = {f"T-{n}": (6, 60) if n % 2 else (5, 50) for n in range(1, 40)}
    assert seqs == expected | {"T-2": (9, 90)}


async def test_a_batch_of_many_known_tasks_is_written_without_stalling_the_database(isolated):
    """FerretDB 1.24 hangs (every client with it) on one update command of a few hundred
    statements; a batch of many task states must not send one."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, INDEXES)
        store = ReportsStore(db)
        batch = lambda seq: [{"kind": "task", "id": f"T-{n}", "programme": "02", "seq": seq,
                              "state": task_state("in_progress", seq)} for n in range(400)]
        await asyncio.wait_for(store.apply_changes(batch(1)), 120)
        await asyncio.wait_for(store.apply_changes(batch(2)), 120)
        progress = {t["progress"] for t in await ReportsStore(db).current_tasks()}  # the latest states only
        stored = [d async for d in db.task_states.find({})]
    finally:
        await client.close()
    assert progress == {2}
    # one document per batch, its states packed: three fields to write, not a document per task
    assert len(stored) == 2 and all(set(d) == {"_id", "g", "z"} for d in stored)


async def test_a_batch_goes_into_the_status_before_the_task_states_are_folded(isolated):
    """A fold (a checkpoint per programme, tens of ms every hundred batches or so) comes after the
    batch is marked changed, so that the status showing it is made meanwhile, not after the fold."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, INDEXES)
        store = ReportsStore(db)
        as_change = lambda seq: [{"kind": "task", "id": f"T-{n}", "programme": "02", "seq": seq,
                                  "state": task_state("in_progress", seq)} for n in range(3)]
        await store.apply_changes(as_change(1))
        fold_if_due, told = store.states.fold_if_due, []

        async def folding(*args, **kwargs):
            told.append(store.holdings.stale.is_set())  # the status maker has been told of the batch
            await fold_if_due(*args, **kwargs)

        store.states.fold_if_due = folding
        store.holdings.stale.clear()  # as the status maker does once it has made the status
        await store.apply_changes(as_change(2))
    finally:
        await client.close()
    assert told == [True]


async def test_a_pdf_asked_for_while_every_render_slot_is_busy_is_a_503_to_retry(isolated):
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False,
                                 reports_max_renders=1, reports_render_wait_s=0.2)
    app = build(settings)
    params = {"cycle": "2021-Q1", "format": "pdf"}
    async with running(app) as client:
        slots = app.state.renderer.slots
        await slots.acquire()                      # another render holds the only slot
        busy = await client.get("/v1/reports/standing-committee", params=params)
        html = await client.get("/v1/reports/standing-committee", params={**params, "format": "html"})
        slots.release()
        free = await client.get("/v1/reports/standing-committee", params=params)
    assert busy.status_code == 503 and busy.headers["content-type"] == "application/problem+json"
    assert int(busy.headers["retry-after"]) > 0
    assert html.status_code == 200
    assert free.status_code == 200 and free.content.startswith(b"%PDF")


async def test_a_unit_report_dated_before_the_due_date_but_received_after_it_is_late_unless_replaying(isolated):
    """Lateness goes by when the report was received, not the date its sender put on it; a
    replay of history (the clock pinned) goes by that date, its arrival being the replay's day."""
    cycle = reporting_cycle(Clock().today())
    due = due_date(cycle, 2)
    sent = utc_iso(datetime.combine(cycle.cut_off, time(10), tzinfo=HANOI))
    received = utc_iso(datetime.combine(due + timedelta(days=3), time(9), tzinfo=HANOI))
    report = {"unit": "SO-KHDT", "cycle": cycle.code, "document_no": "7/BC", "summary": "Báo cáo.", "time": sent}
    records = [change("unit", "SO-KHDT", {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"}),
               kafka.dumps({"kind": "unit_report", "id": f"SO-KHDT|{cycle.code}", "programme": None, "seq": 0,
                            "state": report, "event_key": "SO-KHDT:BC-1", "event_time": sent,
                            "accepted_at": received, "version": f"{sent}|SO-KHDT:BC-1"})]
    seen = {}
    for pinned in (None, datetime.combine(due + timedelta(days=5), time(9), tzinfo=HANOI)):
        settings = isolated.settings(ReportsSettings, reports_scheduler=False, clock_fixed=pinned)
        async with running(build(settings)) as client:
            if pinned is None:  # the topic exists once the first replica started
                await kafkatools.produce(isolated.kafka, settings.topics.changes, records, key=b"SO-KHDT")
            async def unit_in_status():
                return next((u["report"] for u in (await client.get("/v1/status")).json()["units"]
                             if (u["report"] or {}).get("time")), None)
            live = await kafkatools.eventually(unit_in_status)
            known_at = utc_iso(datetime.fromisoformat(received.replace("Z", "+00:00")) + timedelta(days=1))
            as_of = (await client.get("/v1/reports/standing-committee",
                                      params={"cycle": cycle.code, "known_at": known_at})).json()
        seen[pinned is not None] = (live, next(u["report"] for u in as_of["units"] if u["code"] == "SO-KHDT"))
    assert seen[False][0] == seen[False][1] == {"status": "late", "time": sent, "received_at": received,
                                                "document_no": "7/BC"}
    assert seen[True][0]["status"] == seen[True][1]["status"] == "on_time"


async def test_two_replicas_each_holding_some_programmes_answer_the_same_status(isolated):
    """Each replica keeps the programmes of its partitions in memory and reads the others' tallies
    and open tasks from the database: either one answers the whole state."""
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False,
                                 topic_partitions=3, reports_status_list_limit=3)
    registry = [change("unit", "SO-KHDT", {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"})]
    registry += [change("programme", p, {"code": p, "title": f"Chương trình {p}", "lead_unit": "UBND"})
                 for p in ("01", "02", "03", "04")]
    tasks = {p: [change("task", f"T-{p}-{n}", {**task_state(status, progress, due), "programme": p}, programme=p,
                        seq=1)
                 for n, (status, progress, due) in enumerate([("in_progress", 20 * int(p), "2021-03-31"),
                                                              ("completed", 100, "2021-03-01"),
                                                              ("not_started", 0, "2021-05-10")])]
             for p in ("01", "02", "03", "04")}
    first, second = build(settings), build(settings)
    async with running(first) as one, running(second) as two:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, registry, key=b"registry")
        for programme, records in tasks.items():
            await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, records,
                                     key=programme.encode())

        async def statuses():
            return [(await client.get("/v1/status")).json() for client in (one, two)]

        def split(bodies):  # settled, with the partitions shared out between the two
            held = [app.state.holdings.partitions for app in (first, second)]
            return (all(b["totals"]["tasks"]["total"] == 12 and len(b["programmes"]) == 4 for b in bodies)
                    and sorted(map(len, held)) == [1, 2] and not held[0] & held[1])

        bodies = await kafkatools.eventually(statuses, split, timeout=60)
        pages = [[(await client.get("/v1/status/tasks", params={"list": which, "offset": offset, "limit": 3})).json()
                  for which in ("overdue", "due_next") for offset in (0, 3, 6)] for client in (one, two)]
    for body in bodies:
        body.pop("known_at")
    assert bodies[0] == bodies[1] and pages[0] == pages[1]
    body = bodies[0]
    assert [p["progress_pct"] for p in body["programmes"]] == [40.0, 46.7, 53.3, 60.0]
    # the lists hold their first 3 (the limit) and how many there are; the pages give them whole
    assert [t["task_id"] for t in body["overdue_tasks"]] == ["T-01-0", "T-02-0", "T-03-0"]
    assert (body["overdue_tasks_total"], body["next_period"]["tasks_due_total"]) == (4, 8)
    assert [t["task_id"] for t in body["next_period"]["tasks_due"]] == ["T-01-0", "T-02-0", "T-03-0"]
    listed = lambda which: [t["task_id"] for p in pages[0] if p["list"] == which for t in p["tasks"]]
    assert listed("overdue") == ["T-01-0", "T-02-0", "T-03-0", "T-04-0"]
    assert listed("due_next") == [  # 15 March to 14 June, by due date
        "T-01-0", "T-02-0", "T-03-0", "T-04-0", "T-01-2", "T-02-2", "T-03-2", "T-04-2"]
    assert {p["total"] for p in pages[0] if p["list"] == "overdue"} == {4}
    assert body["units"][0]["tasks_overdue"] == 4


def reported(task: str, seq: int, status: str, progress: float, due: str = "2021-06-30") -> dict:
    """A task change as programs sends it: the new state, and the status report that made it."""
    key = f"SO-KHDT:{task}-{seq}"
    return {"kind": "task", "id": task, "programme": "02", "seq": seq, "state": task_state(status, progress, due),
            "event_key": key, "event_time": f"2021-03-0{seq}T00:00:00.000000Z",
            "accepted_at": f"2021-03-0{seq}T01:00:00.000000Z", "version": f"2021-03-0{seq}T00:00:00.000000Z|{key}",
            "fact": {"status": status, "progress": progress, "as_of": f"2021-03-0{seq}", "note": None,
                     "reported_by": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}}}


def crashing(where: str, store: ReportsStore, monkeypatch) -> ReportsStore:
    """`store`, whose write `where` fails as if the replica died there (the batch's others go on)."""
    async def died(*args, **kwargs):
        raise ConnectionError("the replica died")

    if where == "timeline":
        monkeypatch.setattr(timeline, "record", died)
    elif where == "task log":
        monkeypatch.setattr(tasklog, "record", died)
    elif where == "task states":
        monkeypatch.setattr(store.states, "append", died)
    else:
        monkeypatch.setattr(store, "_put_tallies", died)
    return store


@pytest.mark.parametrize("where", ["timeline", "task log", "task states", "tallies"])
async def test_a_batch_read_again_after_a_crash_between_its_writes_changes_nothing(isolated, monkeypatch, where):
    """A write of the batch failed when the replica died: the batch, read again by the next owner
    (once, twice), ends as if it had been applied once: states, tallies, the reports filed."""
    batch = [{"kind": "programme", "id": "02", "programme": None, "seq": 0, "version": "v",
              "state": {"code": "02", "title": "Chương trình 02", "lead_unit": "UBND"}}]
    batch += [reported(*args) for args in [("T-1", 1, "not_started", 0, "2021-03-31"),
                                           ("T-1", 2, "in_progress", 30, "2021-03-31"),
                                           ("T-2", 1, "completed", 100, "2021-02-01"),
                                           ("T-3", 4, "blocked", 10, "2021-01-31")]]
    # the plan as the timeline reads it: its programme and its tasks
    plan = {"programme": "02", "data": {"tasks": [{"task_id": t} for t in ("T-1", "T-2", "T-3")]}}
    client = mongo.connect(isolated.mongo)
    try:
        crashed, once = client[f"{isolated.prefix}_crashed"], client[f"{isolated.prefix}_once"]
        for db in (crashed, once):
            await mongo.ensure_indexes(db, INDEXES)
        with monkeypatch.context() as patched:
            with pytest.raises(ConnectionError):
                await crashing(where, ReportsStore(crashed), patched).apply_changes(batch)
        for _ in range(2):
            await ReportsStore(crashed).apply_changes(batch)  # a new owner, its memory empty
        await ReportsStore(once).apply_changes(batch)
        clock = Clock(fixed=datetime(2021, 4, 5, 9, tzinfo=HANOI))
        statuses = [await ReportsService(ReportsStore(db), clock).live_status() for db in (crashed, once)]
        stored = [(sorted(await ReportsStore(db).current_tasks(), key=lambda t: t["task_id"]),
                   [d async for d in db.tallies.find({})],
                   {t: await tasklog.history(db, t, 4) for t in ("T-1", "T-2", "T-3")},
                   await timeline_query.task_reports(db, plans=[plan], cut_off="2021-03-14T16:59:59.999999Z",
                                                     known_at="2021-04-05T00:00:00.000000Z"))
                  for db in (crashed, once)]
    finally:
        await client.close()
    for status in statuses:
        status.pop("known_at")
    assert statuses[0] == statuses[1] and statuses[0]["totals"]["tasks"]["overdue"] == 2
    assert stored[0] == stored[1] and [(t["task_id"], t["seq"]) for t in stored[0][0]] == [("T-1", 2), ("T-2", 1),
                                                                                          ("T-3", 4)]
    assert [len(stored[0][2][t]) for t in ("T-1", "T-2", "T-3")] == [2, 1, 1]  # each report filed once
    assert sorted((r["subject"], r["data"]["progress"]) for r in stored[0][3]) == [("T-1", 30), ("T-2", 100),
                                                                                    ("T-3", 10)]


async def test_a_batch_writes_its_task_states_while_its_facts_are_being_written(isolated, monkeypatch):
    """A batch's writes that depend on none of one another go at once, not one after another:
    the task states are written while the timeline's write is still under way."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_reports"]
        await mongo.ensure_indexes(db, INDEXES)
        store = ReportsStore(db)
        appending, record = asyncio.Event(), timeline.record
        append = store.states.append

        async def states_append(*args, **kwargs):
            appending.set()
            await append(*args, **kwargs)

        async def timeline_record(*args, **kwargs):
            await asyncio.wait_for(appending.wait(), 30)  # written one after another: never set
            return await record(*args, **kwargs)

        monkeypatch.setattr(store.states, "append", states_append)
        monkeypatch.setattr(timeline, "record", timeline_record)
        await store.apply_changes([reported("T-1", 1, "in_progress", 40), reported("T-2", 1, "blocked", 5)])
        states = {t["task_id"]: t["progress"] for t in await ReportsStore(db).current_tasks()}
        filed = await tasklog.history(db, "T-1", 1)
    finally:
        await client.close()
    assert states == {"T-1": 40, "T-2": 5} and [e["progress"] for e in filed] == [40]


async def test_a_batch_fetched_before_a_rebalance_leaves_the_partitions_it_lost_to_their_new_owner(infra_stack):
    """A rebalance lands between the fetch and the apply and takes partition 1 away: its change is
    neither written nor kept in memory here (a status would otherwise serve that programme from a
    memory its new owner no longer updates), while the change of partition 0, still held, is."""
    client = mongo.connect(infra_stack.mongo)
    db = client[f"{infra_stack.prefix}_rebalance_{secrets.token_hex(4)}"]
    holdings = Holdings(consumer=True, partition_count=lambda: 2)
    service = ReportsService(ReportsStore(db, holdings), Clock())
    broker = FakeBroker()
    letters_for(broker)
    both = [TopicPartition("programs.changes", 0), TopicPartition("programs.changes", 1)]
    kept = change("task", "T-1", task_state("in_progress", 50), programme="02", seq=1)
    lost = change("task", "T-2", {**task_state("in_progress", 50), "programme": "03"}, programme="03", seq=1)
    try:
        await mongo.ensure_indexes(db, INDEXES)
        await holdings.on_partitions_assigned(set(both))
        await holdings.on_partitions_revoked(set(both))
        await holdings.on_partitions_assigned({both[0]})
        fetcher = FakeConsumer()  # it still holds partition 1, as it does until the group has answered
        batch = fetcher.fetched([Record(0, kept, partition=0), Record(0, lost, partition=1)])
        await handlers.take_batch(SimpleNamespace(broker=broker), service, holdings, batch, fetcher)
        await fetcher.commit()
        assert {t["task_id"] for t in await ReportsStore(db).current_tasks()} == {"T-1"}
        assert holdings.programmes == {"02"}
        topic = batch[0].topic  # its commit does not pass the change left to partition 1's owner
        assert fetcher.committed == {TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 0}
    finally:
        await client.drop_database(db.name)
        await client.close()
