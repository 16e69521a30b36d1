"""The programs service against the real Kafka and FerretDB."""

from __future__ import annotations

from shared import accepted, kafka, mongo
from shared.events import parse_event
from tests import kafkatools, samples
from tests.integration.conftest import running

from services.programs.app import build
from services.programs.service import Accepted, ProgramsService
from services.programs.settings import ProgramsSettings
from services.programs.store import INDEXES, ProgramsStore

REGISTRY = [
    samples.envelope("VPTU", "reg-u1", "registry.unit", samples.registry_unit("VPTU", "Văn phòng Thành ủy", "office")),
    samples.envelope("VPTU", "reg-u2", "registry.unit", samples.registry_unit("SO-KHDT", "Sở Kế hoạch và Đầu tư")),
    samples.envelope("VPTU", "reg-u3", "registry.unit", samples.registry_unit("SO-TC", "Sở Tài chính")),
    samples.envelope("VPTU", "reg-p2", "registry.programme", samples.registry_programme("02")),
]


def outcomes_for(records: list[dict], event_id: str) -> list[str]:
    return [r["outcome"] for r in records if r["id"] == event_id]


async def test_events_get_one_outcome_each_over_kafka(isolated):
    settings = isolated.settings(ProgramsSettings)
    topics = settings.topics
    good = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02",
                        [samples.task("T-1", lead_unit="SO-KHDT"), samples.task("T-2", lead_unit="SO-TC")])
    bad = samples.plan("SO-TC", "STC-1", "KH-02-TC", "02",
                       [samples.task("T-9", lead_unit="SO-TC", milestones=0),
                        samples.task("T-10", lead_unit="NO-SUCH-UNIT")])
    update = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
    foreign = samples.task_update("SO-KHDT", "KHDT-3", "T-2", "02", "completed", 100)
    async with running(build(settings)):
        await isolated.load_registry(topics, REGISTRY)
        await isolated.publish_accepted(topics, [good, good, update, bad, foreign])
        records = await kafkatools.read_topic(settings.kafka_bootstrap, topics.outcomes,
                                              until=lambda rs: len(rs) >= len(REGISTRY) + 5)
    assert outcomes_for(records, "KHDT-1") == ["applied", "duplicate"]
    assert outcomes_for(records, "KHDT-2") == ["applied"]
    rejected = [r for r in records if r["id"] == "STC-1"][0]
    assert rejected["outcome"] == "rejected" and rejected["code"] == "invalid_plan"
    assert {f["pointer"] for f in rejected["findings"]} == {"/data/tasks/0/milestones", "/data/tasks/1/lead_unit"}
    assert "2" in rejected["message_vi"] and rejected["message_en"]
    forbidden = [r for r in records if r["id"] == "KHDT-3"][0]
    assert (forbidden["outcome"], forbidden["code"]) == ("rejected", "forbidden")


async def test_poison_record_is_dead_lettered_and_the_partition_moves_on(isolated):
    settings = isolated.settings(ProgramsSettings, topic_partitions=1)
    topics = settings.topics
    async with running(build(settings)):
        await kafkatools.produce(settings.kafka_bootstrap, topics.accepted, [b"\x00not json at all"])
        await isolated.load_registry(topics, REGISTRY[:1])
        dead = await kafkatools.read_topic(settings.kafka_bootstrap, topics.dlq(topics.accepted),
                                           until=lambda rs: len(rs) >= 1, decode=False)
        after = await kafkatools.read_topic(settings.kafka_bootstrap, topics.outcomes, until=lambda rs: len(rs) >= 1)
    assert dead[0].value == b"\x00not json at all"
    headers = dict(dead[0].headers)
    assert headers["nqt-dlq-error-class"] == b"Poison"
    assert headers["nqt-dlq-original-topic"] == topics.accepted.encode()
    assert after[0]["outcome"] == "applied"


async def test_a_record_breaking_the_schema_among_good_ones_is_dead_lettered_with_the_field_named(isolated):
    """A record that reached `events.accepted` around ingest, with a status report's progress of
    150, between two good records of the same batch: it goes to the dead letters, bytes unchanged,
    naming the field it breaks; the records before and after it are decided as if it were not there."""
    settings = isolated.settings(ProgramsSettings, topic_partitions=1)
    topics = settings.topics
    plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT")])
    update = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
    broken = kafka.dumps({**samples.task_update("SO-KHDT", "KHDT-3", "T-1", "02", "in_progress", 150),
                          accepted.ACCEPTED_TIME: "2021-03-20T01:30:00.000000Z", accepted.ACCEPT_ID: "a-broken"})
    values = [accepted.stamp(parse_event(plan))[1], broken, accepted.stamp(parse_event(update))[1]]
    async with running(build(settings)):
        await isolated.load_registry(topics, REGISTRY)
        await kafkatools.produce(settings.kafka_bootstrap, topics.accepted, values)
        dead = await kafkatools.read_topic(settings.kafka_bootstrap, topics.dlq(topics.accepted),
                                           until=lambda rs: len(rs) >= 1, decode=False)
        records = await kafkatools.read_topic(settings.kafka_bootstrap, topics.outcomes,
                                              until=lambda rs: len(rs) >= len(REGISTRY) + 2)
    assert [d.value for d in dead] == [broken]
    headers = dict(dead[0].headers)
    assert headers["nqt-dlq-error-class"] == b"Poison" and b"/data/progress" in headers["nqt-dlq-error-message"]
    assert outcomes_for(records, "KHDT-1") == ["applied"] and outcomes_for(records, "KHDT-2") == ["applied"]
    assert outcomes_for(records, "KHDT-3") == []


async def decide(service: ProgramsService, raw: dict, accepted_at: str, accept_id: str) -> dict:
    """The outcome a record of `raw` gets, as the consumer would decide it (in a batch of its own)."""
    outcomes = await service.process_batch([Accepted(parse_event(raw), accepted_at, accept_id)])
    return outcomes[0]


async def test_a_redelivered_record_returns_its_recorded_outcome_and_changes_nothing(isolated):
    settings = isolated.settings(ProgramsSettings)
    client = mongo.connect(settings.mongo_url)
    db = client[settings.database("programs")]
    await mongo.ensure_indexes(db, INDEXES)
    store = ProgramsStore(db)
    service = ProgramsService(store)
    try:
        await service.process_batch([Accepted(parse_event(raw), "2021-02-10T02:00:00.000000Z", f"r{i}")
                                     for i, raw in enumerate(REGISTRY)])
        plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT")])
        update = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
        first = await decide(service, plan, "2021-02-10T02:00:01.000000Z", "a1")
        await decide(service, update, "2021-02-10T02:00:02.000000Z", "a2")
        again = await decide(ProgramsService(store), update, "2021-02-10T02:00:02.000000Z", "a2")
        resent = await decide(service, update, "2021-02-10T02:05:00.000000Z", "a3")
        task = {t["_id"]: t for t in await store.current_tasks()}["T-1"]
        history = sum(o.get("history", {}).get("subject") == "T-1" for o in (await store.all_outcomes()).values())
    finally:
        await client.close()
    assert first["outcome"] == "applied"
    assert again["outcome"] == "applied" and again["accept_id"] == "a2"
    assert resent["outcome"] == "duplicate" and resent["changes"] == []
    assert (task["status"], task["progress"], history) == ("in_progress", 40.0, 1)


async def test_an_outcome_stored_alone_before_the_packs_still_makes_its_resend_a_duplicate(isolated):
    """A database written before outcomes were packed by the batch keeps them one per document
    (packed alone): an event recorded so is still found by its key, and a re-send is a duplicate."""
    settings = isolated.settings(ProgramsSettings)
    client = mongo.connect(settings.mongo_url)
    db = client[settings.database("programs")]
    await mongo.ensure_indexes(db, INDEXES)
    store = ProgramsStore(db)
    try:
        await ProgramsService(store).process_batch([Accepted(parse_event(raw), "2021-02-10T02:00:00.000000Z", f"r{i}")
                                                   for i, raw in enumerate(REGISTRY)])
        plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT")])
        await decide(ProgramsService(store), plan, "2021-02-10T02:00:01.000000Z", "a1")
        old = {"_id": "SO-KHDT:KHDT-2", "event_key": "SO-KHDT:KHDT-2", "source": "SO-KHDT", "id": "KHDT-2",
               "type": "task.updated", "programme": "02", "outcome": "applied", "event_time": "2021-02-10T01:00:00Z",
               "accepted_at": "2021-02-10T02:00:02.000000Z", "accept_id": "a2", "changes": []}
        await db.outcomes.insert_one({"_id": old["_id"], "decided_at": "2021-02-10T02:00:03Z",
                                      "z": mongo.pack({k: v for k, v in old.items() if k != "_id"})})
        update = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
        resent = await decide(ProgramsService(store), update, "2021-02-10T02:05:00.000000Z", "a3")
        task = {t["_id"]: t for t in await store.current_tasks()}["T-1"]
        recorded = (await store.all_outcomes())["SO-KHDT:KHDT-2"]
    finally:
        await client.close()
    assert resent["outcome"] == "duplicate" and task["progress"] == 0
    assert (recorded["outcome"], recorded["accept_id"], recorded["decided_at"]) == ("applied", "a2", "2021-02-10T02:00:03Z")


async def test_a_status_report_is_kept_in_one_small_document_its_outcome_packed_with_the_batch(isolated):
    """Each status report costs the database one small document, its outcome filed under its
    event key; the batch's outcomes (what each was about, its data, both clocks) are packed in
    one more, and the batch's new task states in another."""
    settings = isolated.settings(ProgramsSettings)
    client = mongo.connect(settings.mongo_url)
    db = client[settings.database("programs")]
    await mongo.ensure_indexes(db, INDEXES)
    service = ProgramsService(ProgramsStore(db))
    try:
        await service.process_batch([Accepted(parse_event(raw), "2021-02-10T02:00:00.000000Z", f"r{i}")
                                     for i, raw in enumerate(REGISTRY)])
        await decide(service, samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02",
                                           [samples.task(t, lead_unit="SO-KHDT") for t in ("T-1", "T-2")]),
                     "2021-02-10T02:00:01.000000Z", "a1")
        before = {name: await db[name].count_documents({}) for name in await db.list_collection_names()}
        known = set(service.known.logged)
        updates = [samples.task_update("SO-KHDT", f"KHDT-{n}", t, "02", "in_progress", 10 * n)
                   for n, t in ((2, "T-1"), (3, "T-2"))]
        await service.process_batch([Accepted(parse_event(raw), "2021-02-10T02:00:02.000000Z", f"b{n}")
                                     for n, raw in enumerate(updates)])
        after = {name: await db[name].count_documents({}) for name in await db.list_collection_names()}
        outcome = (await service.store.outcomes_for(["SO-KHDT:KHDT-3"]))["SO-KHDT:KHDT-3"]
        stored = await db.outcomes.find_one({"_id": "SO-KHDT:KHDT-3"})
        logged, = set(service.known.logged) - known
        states = await db.task_states.find_one({"_id": logged})  # the batch's states of its tasks
    finally:
        await client.close()
    grown = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}
    assert grown == {"outcomes": 2, "outcome_packs": 1, "task_states": 1}
    assert outcome["history"]["subject"] == "T-2" and outcome["history"]["data"]["progress"] == 30.0
    assert outcome["accepted_at"] == "2021-02-10T02:00:02.000000Z" and outcome["event_time"]
    # FerretDB's cost is per field: what is read whole is stored packed, beside what it is found by
    assert set(stored) == {"_id", "pack"}
    assert set(states) == {"_id", "g", "z"} and states["g"] == ["02"]
    assert {(t["_id"], t["progress"]) for t in mongo.unpack(states["z"])} == {("T-1", 20.0), ("T-2", 30.0)}


async def test_an_older_status_report_does_not_overwrite_a_newer_one(isolated):
    settings = isolated.settings(ProgramsSettings)
    client = mongo.connect(settings.mongo_url)
    db = client[settings.database("programs")]
    store = ProgramsStore(db)
    service = ProgramsService(store)
    try:
        await service.process_batch([Accepted(parse_event(raw), "2021-02-10T02:00:00.000000Z", f"r{i}")
                                     for i, raw in enumerate(REGISTRY)])
        await decide(service, samples.plan("SO-KHDT", "P", "KH", "02", [samples.task("T-1", lead_unit="SO-KHDT")]),
                     "x", "p")
        newer = samples.task_update("SO-KHDT", "U-2", "T-1", "02", "completed", 100, time="2021-05-01T08:00:00+07:00")
        older = samples.task_update("SO-KHDT", "U-1", "T-1", "02", "in_progress", 30, time="2021-04-01T08:00:00+07:00")
        await decide(service, newer, "x", "n")
        late = await decide(service, older, "x", "o")
        task = {t["_id"]: t for t in await store.current_tasks()}["T-1"]
    finally:
        await client.close()
    assert late["outcome"] == "applied"  # recorded in the task's history ...
    assert (task["status"], task["progress"]) == ("completed", 100.0)  # ... but the state stays the newer one
