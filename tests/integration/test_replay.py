"""`nqt replay` against the four services as processes on the real Kafka and FerretDB: a small
scenario goes through them, then the state rebuilt from the log is what the live databases
hold, a corrupted live document is named, and the replay publishes and sends nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from nqt.fingerprint import fingerprint
from nqt.logreader import LogReader
from nqt.rebuild import ProgramsReplay, Skipped
from services.programs.store import ProgramsStore
from services.reports.store import ReportsStore
from shared import accepted, kafka, mongo
from shared.settings import CommonSettings
from shared.events import parse_event
from tests import kafkatools, samples
from tests.e2e.conftest import deployed

REGISTRY = "deploy/registry/hanoi-xvii.yaml"
TOPICS = ("events.accepted", "programs.outcomes", "programs.changes", "reports.due", "reports.generated",
          "inbound.events", "events.accepted.dlq", "programs.outcomes.dlq", "programs.changes.dlq",
          "reports.due.dlq")


def events() -> list[tuple[str, dict]]:
    """(unit, event): a plan sent twice, a report on its task, an update held until its plan
    comes, an invalid plan and a unit's quarterly report."""
    khdt_plan = samples.plan("SO-KHDT", "SO-KHDT-2021-000001", "KH-02-SOKHDT", "02", [
        samples.task("SO-KHDT-02-001", lead_unit="SO-KHDT", due="2021-06-30"),
        samples.task("SO-KHDT-02-002", lead_unit="SO-KHDT", due="2021-03-31")])
    tc_plan = samples.plan("SO-TC", "SO-TC-2021-000002", "KH-02-SOTC", "02", [
        samples.task("SO-TC-02-001", lead_unit="SO-TC", due="2021-09-30")], time="2021-02-12T09:00:00+07:00")
    return [
        ("SO-KHDT", khdt_plan), ("SO-KHDT", khdt_plan),
        ("SO-KHDT", samples.task_update("SO-KHDT", "SO-KHDT-2021-000002", "SO-KHDT-02-001", "02", "in_progress", 40)),
        ("SO-TC", samples.task_update("SO-TC", "SO-TC-2021-000003", "SO-TC-02-001", "02", "in_progress", 25)),
        ("SO-TC", tc_plan),
        ("SO-TC", samples.plan("SO-TC", "SO-TC-2021-000001", "KH-03-SOTC", "03", [
            samples.task("SO-TC-03-001", lead_unit="SO-TC", milestones=0)])),
        ("SO-KHDT", samples.envelope("SO-KHDT", "SO-KHDT-2021-000003", "unit-report.submitted", {
            "cycle": "2021-Q1", "document_no": "15/BC-SKHDT", "summary": "Báo cáo quý I"},
            "2021-03-15T10:00:00+07:00")),
    ]


def groups(prefix: str) -> dict[str, str]:
    """Each service's consumer group -> the topic it reads (what the live state is built from)."""
    return {"nqt-programs": f"{prefix}.events.accepted", "nqt-reports": f"{prefix}.programs.changes",
            "nqt-ingest": f"{prefix}.programs.outcomes", "nqt-ingest.registry": f"{prefix}.programs.changes",
            "nqt-ingest.due": f"{prefix}.reports.due",
            "nqt-notify.changes": f"{prefix}.programs.changes", "nqt-notify.due": f"{prefix}.reports.due"}


async def play(deployment) -> None:
    prefix = deployment.env["NQT_TOPIC_PREFIX"].rstrip(".")
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=30) as ingest:
        for unit, event in events():
            response = await ingest.post("/v1/events", json=event,
                                         headers={"Authorization": f"Bearer {deployment.keys[unit]}"})
            assert response.status_code == 202, response.text
    # The scheduler opens 2021-Q1 and issues its report (the clock is pinned to 2021-04-05):
    # after that, the services publish nothing of their own accord.
    for topic in ("reports.due", "reports.generated"):
        await kafkatools.read_topic(deployment.env["NQT_KAFKA_BOOTSTRAP"], f"{prefix}.{topic}",
                                    until=lambda rs: len(rs) >= 1, timeout=180)
    await kafkatools.eventually(lambda: kafkatools.drained(deployment.env["NQT_KAFKA_BOOTSTRAP"], groups(prefix)),
                                timeout=120, interval=0.5)


@pytest.fixture(scope="module")
def deployment(infra_stack, tmp_path_factory):
    with deployed(infra_stack, tmp_path_factory.mktemp("replay-logs"), "replay") as running:
        loaded = running.nqt("registry", "load", REGISTRY)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        asyncio.run(play(running))
        yield running


def ends(deployment) -> dict:
    prefix = deployment.env["NQT_TOPIC_PREFIX"]
    return asyncio.run(kafkatools.end_offsets(deployment.env["NQT_KAFKA_BOOTSTRAP"], [prefix + t for t in TOPICS]))


async def documents(deployment, database: str, collection: str, query: dict | None = None) -> list[dict]:
    client = mongo.connect(deployment.env["NQT_MONGO_URL"])
    try:
        return [d async for d in client[database][collection].find(query or {})]
    finally:
        await client.close()


async def current_tasks(deployment, database: str) -> list[dict]:
    client = mongo.connect(deployment.env["NQT_MONGO_URL"])
    try:
        return await ReportsStore(client[database]).current_tasks()
    finally:
        await client.close()


def test_the_state_rebuilt_from_the_log_is_the_live_state_and_nothing_is_sent(deployment):
    before = ends(deployment)
    done = deployment.nqt("replay", "--compare")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: identical" in done.stdout
    for service in ("programs", "reports", "ingest", "notify"):
        assert service in done.stdout

    db = deployment.env["NQT_DB_PREFIX"]
    tasks = asyncio.run(current_tasks(deployment, f"replay_{db}_reports"))
    assert {t["task_id"]: (t["status"], t["progress"]) for t in tasks} == {  # each task's latest state
        "SO-KHDT-02-001": ("in_progress", 40), "SO-KHDT-02-002": ("not_started", 0),
        "SO-TC-02-001": ("in_progress", 25)}  # the held update applied once its plan came
    outcomes = asyncio.run(documents(deployment, f"replay_{db}_ingest", "events", {"source": {"$ne": "VPTU"}}))
    assert sorted((o["_id"], o["status"]) for o in outcomes) == [
        ("SO-KHDT:SO-KHDT-2021-000001", "applied"), ("SO-KHDT:SO-KHDT-2021-000002", "applied"),
        ("SO-KHDT:SO-KHDT-2021-000003", "applied"), ("SO-TC:SO-TC-2021-000001", "rejected"),
        ("SO-TC:SO-TC-2021-000002", "applied"), ("SO-TC:SO-TC-2021-000003", "applied")]
    assert asyncio.run(documents(deployment, f"replay_{db}_notify", "cycles"))[0]["_id"] == "2021-Q1"
    for sent in ("deliveries", "digests"):  # notify's read model only: nothing was sent
        assert asyncio.run(documents(deployment, f"replay_{db}_notify", sent)) == []

    assert ends(deployment) == before  # nothing published, not even a dead letter


def test_a_corrupted_live_document_is_named(deployment):
    db = deployment.env["NQT_DB_PREFIX"]

    async def set_progress(value: float) -> None:
        """Every stored state of the task says `value` (its documents hold others' states too, packed)."""
        client = mongo.connect(deployment.env["NQT_MONGO_URL"])
        try:
            states = client[f"{db}_reports"].task_states
            async for doc in states.find({}):
                held = mongo.unpack(doc["z"])
                changed = [{**t, "progress": value} if t["task_id"] == "SO-KHDT-02-002" else t for t in held]
                if changed != held:
                    await states.update_one({"_id": doc["_id"]}, {"$set": {"z": mongo.pack(changed)}})
        finally:
            await client.close()

    asyncio.run(set_progress(55))
    try:
        done = deployment.nqt("replay", "--compare", "--replace", "--services", "reports,notify")
    finally:
        asyncio.run(set_progress(0))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verdict: DIFFERENT" in done.stdout
    assert "reports: collection task_states, first differing _id 'SO-KHDT-02-002' (differs)" in done.stdout
    assert "notify: collection" not in done.stdout  # notify's state is what the log says


def test_a_lost_database_is_rebuilt_in_place(deployment):
    name = f"{deployment.env['NQT_DB_PREFIX']}_ingest"  # ingest writes nothing of its own accord

    async def printed():
        client = mongo.connect(deployment.env["NQT_MONGO_URL"])
        try:
            return (await fingerprint(client[name], "ingest")).digest
        finally:
            await client.close()

    async def lose():
        client = mongo.connect(deployment.env["NQT_MONGO_URL"])
        try:
            await client.drop_database(name)
        finally:
            await client.close()

    before = asyncio.run(printed())
    asyncio.run(lose())
    done = deployment.nqt("replay", "--into-live", "--services", "ingest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert asyncio.run(printed()) == before
    answer = httpx.get(f"{deployment.url('ingest')}/v1/events/SO-TC-2021-000001", timeout=10,
                       headers={"Authorization": f"Bearer {deployment.keys['SO-TC']}"})
    assert answer.status_code == 200 and answer.json()["status"] == "rejected", answer.text


def test_bad_options_are_refused_and_change_nothing(deployment):
    db = deployment.env["NQT_DB_PREFIX"]
    before = asyncio.run(documents(deployment, f"{db}_programs", "task_states"))
    into_live = deployment.nqt("replay", "--into-live", "--services", "programs")
    assert into_live.returncode == 2 and f"{db}_programs holds data" in into_live.stderr, into_live.stderr
    assert asyncio.run(documents(deployment, f"{db}_programs", "task_states")) == before

    again = deployment.nqt("replay", "--services", "programs")  # the first test's replay is there
    assert again.returncode == 2 and "--replace" in again.stderr, again.stderr
    unknown = deployment.nqt("replay", "--services", "programs,billing")
    assert unknown.returncode == 2 and "billing" in unknown.stderr, unknown.stderr
    elsewhere = deployment.nqt("replay", "--services", "programs", "--prefix", "x", "--topic-prefix", "nowhere.")
    assert elsewhere.returncode == 2 and "no topic 'nowhere.events.accepted'" in elsewhere.stderr, elsewhere.stderr
    assert asyncio.run(documents(deployment, f"x_{db}_programs", "task_states")) == []


async def test_a_held_update_expires_in_a_replay_as_it_did_live(isolated):
    """Live, an update waits for its plan at most the hold; a sweep then rejects it. Replayed in
    one batch, the update whose plan came after the hold is rejected, the other one applied."""
    t0 = datetime(2021, 3, 1, 2, tzinfo=timezone.utc)
    hold = timedelta(hours=1)

    def record(offset: int, raw: dict, after: timedelta) -> SimpleNamespace:
        _, value = accepted.stamp(parse_event(raw), now=t0 + after)
        return SimpleNamespace(topic="events.accepted", partition=0, offset=offset, value=value, key=None, headers=())

    def tasks(plan_id: str, task_id: str) -> dict:
        return samples.plan("SO-KHDT", f"E-{plan_id}", plan_id, "02", [samples.task(task_id, lead_unit="SO-KHDT")])

    raws = [
        (samples.envelope("VPTU", "reg-u1", "registry.unit", samples.registry_unit("SO-KHDT", "Sở KH&ĐT")), timedelta()),
        (samples.envelope("VPTU", "reg-p2", "registry.programme", samples.registry_programme("02")), timedelta()),
        (samples.task_update("SO-KHDT", "E-LATE", "T-LATE", "02", "in_progress", 30), timedelta(minutes=1)),
        (samples.task_update("SO-KHDT", "E-SOON", "T-SOON", "02", "in_progress", 60), timedelta(minutes=2)),
        (tasks("KH-SOON", "T-SOON"), timedelta(minutes=30)),   # within the hold: the update is applied
        (tasks("KH-LATE", "T-LATE"), timedelta(hours=2)),      # after it: the update was rejected before
    ]
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_programs"]
        programs = ProgramsReplay(db, Skipped(), hold_seconds=hold.total_seconds(), started=t0 + timedelta(days=1))
        await programs.apply([record(i, raw, after) for i, (raw, after) in enumerate(raws)])
        await programs.finish()
        outcomes = {k: (d["outcome"], d.get("code")) for k, d in (await ProgramsStore(db).all_outcomes()).items()}
        tasks_now = {d["_id"]: (d["status"], d["progress"]) for d in await ProgramsStore(db).current_tasks()}
        held = [d async for d in db.held.find({})]
    finally:
        await client.drop_database(f"{isolated.prefix}_programs")
        await client.close()
    assert outcomes["SO-KHDT:E-SOON"] == ("applied", None)
    assert outcomes["SO-KHDT:E-LATE"] == ("rejected", "unknown_task")
    assert tasks_now == {"T-SOON": ("in_progress", 60), "T-LATE": ("not_started", 0)}
    assert held == []


async def test_the_log_is_read_in_the_order_it_was_written_up_to_where_it_ended(isolated):
    """Partitions merged by record time, each partition's own order kept (even where its clock
    went back); what is written after reading began is not read."""
    settings = isolated.settings(CommonSettings)
    topic = settings.topics.accepted
    await kafka.ensure_topics(settings, [topic])
    written = {0: [(1000, b"a"), (4000, b"d")], 1: [(2000, b"b"), (3000, b"c")],
               2: [(500, b"first"), (100, b"second"), (5000, b"z")]}
    producer = AIOKafkaProducer(bootstrap_servers=isolated.kafka, acks="all")
    await producer.start()
    try:
        for partition, records in written.items():
            for ts, value in records:
                await producer.send_and_wait(topic, value, partition=partition, timestamp_ms=ts)
        async with LogReader(settings, topic) as log:
            await producer.send_and_wait(topic, b"later", partition=1, timestamp_ms=2500)
            batches = [[r.value for r in batch] async for batch in log.batches(3)]
    finally:
        await producer.stop()
    assert log.total == 7
    assert batches == [[b"first", b"second", b"a"], [b"b", b"c", b"d"], [b"z"]]
