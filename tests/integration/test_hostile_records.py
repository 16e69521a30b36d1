"""Records that a consumer cannot process never stop it, and outages never lose a record:
real Kafka, FerretDB and HTTP peers."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx

from deploy.local import infra
from shared import accepted, kafka, mongo
from shared.records import ReportDue
from tests import kafkatools, samples
from tests.integration.conftest import running
from tests.faults.checker import read_all
from tests.integration.test_notify import change, mail_to, notify, unit
from tests.integration.test_programs import REGISTRY
from tests.integration.test_hostile_property import Recorded
from tests.receivers import Receiver

from services.notify.service import Notifier
from services.notify.settings import NotifySettings
from services.notify.store import INDEXES as NOTIFY_INDEXES, NotifyStore
from services.programs.app import build
from services.programs.settings import ProgramsSettings


def unit_report(source: str, event_id: str, cycle: str) -> dict:
    return samples.envelope(source, event_id, "unit-report.submitted",
                            {"cycle": cycle, "document_no": "12-BC/DU", "summary": "Báo cáo quý"},
                            "2021-03-16T09:00:00+07:00")


async def test_programs_decides_what_it_cannot_process_and_moves_on(isolated):
    """Each of these once stopped the programs service for good: formatting the time as UTC
    overflowed (such a time is now refused by the contract's models: the record is
    dead-lettered); a cycle code that matches the pattern but is no cycle raised a ValueError;
    an invalid plan's outcome (30,000 findings) was larger than the producer may send."""
    settings = isolated.settings(ProgramsSettings, topic_partitions=1)
    topics = settings.topics
    plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT")])
    ancient = samples.task_update("SO-KHDT", "KHDT-ANCIENT", "T-1", "02", "completed", 100,
                                  time="0001-01-01T00:00:00+07:00")
    no_cycle = unit_report("SO-KHDT", "KHDT-BC", "0000")
    strangers = [f"X-{i:05d}" for i in range(50)]
    crowded = samples.plan("SO-TC", "STC-1", "KH-02-TC", "02",
                           [samples.task(f"TC-{i}", lead_unit="SO-TC", coordinating_units=strangers)
                            for i in range(600)])
    after = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
    async with running(build(settings)):
        await isolated.load_registry(topics, REGISTRY)
        await _publish(isolated, topics, [plan, ancient, no_cycle, crowded, after])
        records = await kafkatools.read_topic(settings.kafka_bootstrap, topics.outcomes, timeout=90,
                                              until=lambda rs: any(r["id"] == "KHDT-2" for r in rs))
        dead = await kafkatools.read_topic(settings.kafka_bootstrap, topics.dlq(topics.accepted), decode=False,
                                           until=lambda rs: len(rs) >= 1)
    outcome = {r["id"]: r for r in records}
    assert "KHDT-ANCIENT" not in outcome and len(dead) == 1 and b"KHDT-ANCIENT" in dead[0].value
    assert b"0001 and 9999" in dict(dead[0].headers)["nqt-dlq-error-message"]
    assert (outcome["KHDT-BC"]["outcome"], outcome["KHDT-BC"]["code"]) == ("rejected", "unknown_cycle")
    assert (outcome["STC-1"]["outcome"], outcome["STC-1"]["code"]) == ("rejected", "invalid_plan")
    assert len(outcome["STC-1"]["findings"]) == 200 and outcome["STC-1"]["findings_total"] == 30_000
    assert "600" in outcome["STC-1"]["message_en"]
    assert outcome["KHDT-2"]["outcome"] == "applied"


async def _publish(isolated, topics, raw_events: list[dict]) -> None:
    """Stamped as ingest stamps them (unchecked: as a faulty or older publisher might), into one
    partition, in order (max_request_size: the big plan)."""
    values = [kafka.dumps({**raw, accepted.ACCEPTED_TIME: "2021-03-20T01:00:00.000000Z",
                           accepted.ACCEPT_ID: f"a{i}"}) for i, raw in enumerate(raw_events)]
    await kafkatools.produce_many(isolated.kafka, topics.accepted, [(b"02", value) for value in values],
                                  max_request_size=4 * 1024 * 1024)


async def test_a_report_is_delivered_once_the_reports_service_is_back(isolated):
    """`report.generated` while reports is down is waited out, however long; never dead-lettered."""
    port = infra.free_port()  # nothing listens there yet: reports is down
    with Receiver() as receiver:
        async with notify(isolated, receiver, reports_url=f"http://127.0.0.1:{port}") as (_, _, mailbox, settings):
            event = {"id": "report-generated-2021-Q1", "cycle": "2021-Q1", "number": "Số 12-BC/VPTU",
                     "summary": "Báo cáo quý I", "formats": {"pdf": f"http://127.0.0.1:{port}/v1/reports/archive/2021-Q1/pdf"}}
            await kafkatools.produce(isolated.kafka, settings.topics.generated, [kafka.dumps(event)], key=b"2021-Q1")
            await asyncio.sleep(8)  # well past the retry budget that used to end in the dead-letter topic
            assert not mail_to(mailbox, "btv@hanoi.example")
            with Receiver(port) as reports:
                reports.files["/v1/reports/archive/2021-Q1/pdf"] = ("application/pdf", b"%PDF-1.7 Q1")
                mail = await kafkatools.eventually(lambda: _now(mail_to(mailbox, "btv@hanoi.example")), timeout=60)
            dead = await _dead_letters(isolated, settings.topics.generated)
    assert "Số 12-BC/VPTU" in mail[0]["Subject"] and dead == []


async def test_a_notice_for_a_unit_not_known_yet_waits_for_it(isolated):
    """A rejection for a unit that notify's registry copy does not know yet is sent when the unit
    arrives (registry changes and outcomes travel on different topics), not dead-lettered."""
    with Receiver() as receiver:
        async with notify(isolated, receiver) as (_, _, mailbox, settings):
            outcome = {"outcome": "rejected", "source": "Q-HOANKIEM", "event_key": "Q-HOANKIEM:BC-1", "id": "BC-1",
                       "type": "unit-report.submitted", "code": "forbidden", "message_vi": "Không có quyền",
                       "message_en": "Forbidden", "findings": [], "event_time": "2021-03-01T00:00:00Z",
                       "decided_at": "2021-03-01T00:00:01Z"}
            await kafkatools.produce(isolated.kafka, settings.topics.outcomes, [kafka.dumps(outcome)],
                                     key=b"Q-HOANKIEM")
            await asyncio.sleep(8)
            newcomer = unit("Q-HOANKIEM", email="q-hoankiem@hanoi.example")
            await kafkatools.produce(isolated.kafka, settings.topics.changes,
                                     [change("unit", "Q-HOANKIEM", newcomer)], key=b"registry")
            mail = await kafkatools.eventually(lambda: _now(mail_to(mailbox, "q-hoankiem@hanoi.example")), timeout=60)
            dead = await _dead_letters(isolated, settings.topics.outcomes)
    assert "BC-1" in mail[0].get_body(("plain",)).get_content() and dead == []


async def _dead_letters(isolated, topic: str) -> list:
    """What reached `<topic>.dlq` so far (the topic exists: services create every topic at start)."""
    return [r for part in (await read_all(isolated.kafka, topic + ".dlq")).values() for r in part]


async def _now(value):
    return value


async def test_a_cycle_opened_before_its_units_were_known_still_expects_them_all(isolated):
    """The units' notices wait for them one by one; the cycle keeps every unit it expects."""
    client = mongo.connect(isolated.mongo)
    try:
        db = client[f"{isolated.prefix}_notify"]
        await mongo.ensure_indexes(db, NOTIFY_INDEXES)
        sent = Recorded("email")
        notifier = Notifier(NotifyStore(db), {"email": sent}, NotifySettings())
        event = ReportDue.model_validate(
            {"id": "report-due-2021-Q1", "cycle": "2021-Q1", "kind": "quarterly", "due_date": "2021-03-16",
             "window": {"start": "2020-12-15", "cut_off": "2021-03-14"}, "expected_units": ["Q-BADINH", "SO-KHDT"]})
        today = date(2021, 3, 14)
        await notifier.cycle_opened(event, today)
        async with httpx.AsyncClient() as fetch:
            for code in ("SO-KHDT", "Q-BADINH"):
                await notifier.store.put_registry("unit", unit(code, email=f"{code.lower()}@hanoi.example"))
                await notifier.recipient_known(code, today, fetch)
        cycles = await notifier.store.cycles()
    finally:
        await client.close()
    assert [c["expected_units"] for c in cycles] == [["Q-BADINH", "SO-KHDT"]]
    assert sorted(m.recipient for m in sent.sent) == ["Q-BADINH", "SO-KHDT"]


async def test_notify_dead_letters_a_record_it_cannot_read_with_the_reason(isolated):
    """A change of a kind notify does not know, a record missing a field, one with a field of
    the wrong type: each goes to its dead-letter topic at once, naming what is wrong, and the
    records behind them are handled."""
    task = {"task_id": "K-T9", "programme": "02", "title": "Nhiệm vụ", "lead_unit": "SO-KHDT",
            "due_date": "2021-03-20", "status": "in_progress", "progress": "nhiều"}
    bad_changes = [change("budget_line", "B-1", {"code": "B-1"}),
                   change("unit_report", "SO-KHDT|2021-Q1", {"unit": "SO-KHDT", "time": "2021-03-12T02:00:00Z"}),
                   change("task", "K-T9", task, seq=1)]
    why = {"outcomes": {"outcome": "rejected", "source": "SO-KHDT", "event_key": "SO-KHDT:X-1", "id": "X-1",
                        "type": "task.updated", "event_time": "2021-03-01T00:00:00Z",
                        "decided_at": "2021-03-01T00:00:01Z"},
           "due": {"cycle": "2021-Q1", "due_date": "2021-03-16", "window": {"start": "2020-12-15",
                                                                             "cut_off": "2021-03-14"},
                   "expected_units": "SO-KHDT"},
           "generated": {"cycle": "2021-Q1", "number": "Số 1-BC/VPTU", "summary": "Quý I", "formats": {}}}
    with Receiver() as receiver:
        async with notify(isolated, receiver) as (_, _, mailbox, settings):
            topics = settings.topics
            newcomer = change("unit", "Q-HOANKIEM", unit("Q-HOANKIEM", email="q-hoankiem@hanoi.example"))
            await kafkatools.produce(isolated.kafka, topics.changes, [*bad_changes, newcomer], key=b"registry")
            for name, value in why.items():
                await kafkatools.produce(isolated.kafka, getattr(topics, name), [kafka.dumps(value)], key=b"x")
            behind = {**why["outcomes"], "source": "Q-HOANKIEM", "event_key": "Q-HOANKIEM:BC-2", "id": "BC-2",
                      "code": "forbidden", "message_vi": "Không có quyền", "message_en": "Forbidden"}
            await kafkatools.produce(isolated.kafka, topics.outcomes, [kafka.dumps(behind)], key=b"x")
            mail = await kafkatools.eventually(lambda: _now(mail_to(mailbox, "q-hoankiem@hanoi.example")), timeout=60)
            dead = {name: await kafkatools.read_topic(isolated.kafka, topics.dlq(getattr(topics, name)),
                                                      decode=False, until=lambda rs, n=n: len(rs) >= n)
                    for name, n in (("changes", 3), ("outcomes", 1), ("due", 1), ("generated", 1))}
    reasons = {name: [dict(r.headers)["nqt-dlq-error-message"].decode() for r in records]
               for name, records in dead.items()}
    assert "BC-2" in mail[0].get_body(("plain",)).get_content()
    assert [r.value for r in dead["changes"]] == bad_changes, "the dead letters are the original bytes"
    assert {(dict(r.headers)["nqt-dlq-error-class"], dict(r.headers)["nqt-dlq-attempts"])
            for records in dead.values() for r in records} == {(b"Poison", b"1")}, "refused at once"
    assert reasons["changes"][0].startswith("unknown change kind 'budget_line'")
    assert reasons["changes"][1:] == ["state/cycle: Field required",
                                      "state/progress: Input should be a valid number, unable to parse string "
                                      "as a number"]
    assert reasons["outcomes"] == ["a rejected outcome without its code, message_vi and message_en"]
    assert reasons["due"] == ["expected_units: Input should be a valid list"]
    assert reasons["generated"] == ["formats: no pdf among the formats"]
