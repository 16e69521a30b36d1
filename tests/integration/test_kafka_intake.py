"""Systems that publish straight to Kafka: CloudEvents built with the real SDK, some over
HTTP and some as records on `inbound.events` signed with their unit's secret, end applied
alike; anything that cannot be accepted (unsigned, badly signed, stale or replayed
records too) is on `inbound.events.dlq`, bytes unchanged, with the reason in its headers,
and the intake keeps moving. A record read again after a crash is one acceptance.
`nqt dlq list/replay` show and resend dead letters.
Real Kafka + FerretDB; the programs and ingest apps run in-process."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from cloudevents.core.bindings import http as ce_http, kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build as build_ingest
from services.ingest.domain import new_signing_secret
from services.ingest.settings import IngestSettings
from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings

ROOT = Path(__file__).resolve().parents[2]
HANOI = timezone(timedelta(hours=7))
LOG_APPEND_TIME = 1
MAX_BYTES = 4096
UNITS = ("VPTU", "SO-KHDT", "SO-TC")  # H-MOI has a key but joins the registry only later
KEYS = {f"key-{u}": u for u in (*UNITS, "H-MOI")}
SECRETS = {u: new_signing_secret() for u in (*UNITS, "H-MOI")}
REGISTRY = [
    *[samples.envelope("VPTU", f"reg-{u}", "registry.unit", samples.registry_unit(u, f"Đơn vị {u}"))
      for u in UNITS],
    samples.envelope("VPTU", "reg-p02", "registry.programme", samples.registry_programme("02")),
]


def cloudevent(source: str, event_id: str, event_type: str, data: dict) -> CloudEvent:
    """An event as a departmental system builds it with the CloudEvents SDK."""
    return CloudEvent({"type": event_type, "source": source, "id": event_id, "datacontenttype": "application/json",
                       "time": datetime(2021, 3, 20, 8, 30, tzinfo=HANOI)}, data)


def plan(source: str, event_id: str, plan_id: str, task_ids: list[str]) -> CloudEvent:
    raw = samples.plan(source, event_id, plan_id, "02", [samples.task(t, lead_unit=source) for t in task_ids])
    return cloudevent(source, event_id, "plan.submitted", raw["data"])


def update(source: str, event_id: str, task_id: str, **data) -> CloudEvent:
    raw = samples.task_update(source, event_id, task_id, "02", "in_progress", 40)
    return cloudevent(source, event_id, "task.updated", {**raw["data"], **data})


def structured(event: CloudEvent) -> bytes:
    return ce_kafka.to_structured_event(event).value


def signature(value: bytes, unit: str, *, secret: str | None = None, **options) -> list[tuple[str, bytes]]:
    """The headers a unit's system sends its record with: a Standard Webhooks signature."""
    return [*kafkatools.signature(value, secret or SECRETS[unit], **options),
            ("content-type", b"application/cloudevents+json")]


Record = tuple[bytes, list[tuple[str, bytes]]]  # value, headers


def signed(value: bytes, unit: str = "SO-KHDT", **options) -> Record:
    return value, signature(value, unit, **options)


class Intake:
    def __init__(self, client, settings: IngestSettings):
        self.client, self.settings = client, settings
        self.topics = settings.topics

    async def post(self, event: CloudEvent) -> None:
        message = ce_http.to_structured_event(event)
        response = await self.client.post("/v1/events", content=message.body,
                                          headers={**message.headers, **auth(event.get_source())})
        assert response.status_code == 202, response.text

    async def produce(self, records: list[Record]) -> None:
        """In order, on one partition."""
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            for value, headers in records:
                await producer.send_and_wait(self.topics.inbound, value, key=b"one-partition", headers=headers)
        finally:
            await producer.stop()

    async def status(self, source: str, event_id: str) -> tuple[int, dict]:
        response = await self.client.get(f"/v1/events/{event_id}", headers=auth(source))
        return response.status_code, response.json()

    async def outcome(self, source: str, event_id: str) -> str:
        _, status = await kafkatools.eventually(  # 404 until ingest has taken the record in
            lambda: self.status(source, event_id), lambda s: s[0] == 200 and s[1]["status"] != "accepted")
        return status["status"]

    async def lag(self, role: str, topic: str) -> int:
        """Records of `topic` that ingest's consumer group `<ingest_group>.<role>` (`<ingest_group>` for
        the outcomes: role "") has not committed yet."""
        group = f"{self.settings.ingest_group}.{role}" if role else self.settings.ingest_group
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            [described] = await admin.describe_topics([topic])
            partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
            ends = await consumer.end_offsets(partitions)
            return sum(end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())
        finally:
            await consumer.stop()
            await admin.close()

    async def caught_up(self, role: str, topic: str) -> None:
        await kafkatools.eventually(lambda: self.lag(role, topic), lambda lag: lag == 0)


def auth(unit: str) -> dict:
    return {"Authorization": f"Bearer key-{unit}"}


@asynccontextmanager
async def stack(isolated):
    programs = build_programs(isolated.settings(ProgramsSettings))
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS, ingest_max_event_bytes=MAX_BYTES,
                                 ingest_dev_signing_secrets=SECRETS, ingest_group=f"{isolated.prefix}-ingest")
    async with running(programs), running(build_ingest(settings)) as client:
        intake = Intake(client, settings)
        await isolated.load_registry(intake.topics, REGISTRY)
        await intake.caught_up("registry", intake.topics.changes)  # ingest knows the units
        yield intake


async def nqt_dlq(isolated, *args: str) -> str:
    """Run `nqt dlq ...` as an operator does, in its own process, configured by NQT_* variables."""
    env = {**os.environ, "NQT_KAFKA_BOOTSTRAP": isolated.kafka, "NQT_TOPIC_PREFIX": f"{isolated.prefix}.",
           "NQT_ENV": "test"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from nqt.dlq import dlq_app; dlq_app()", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def dead_letters(intake, count: int) -> dict[bytes, tuple]:
    """The dead letters of inbound.events once there are `count`, by value: (record, headers)."""
    letters = await kafkatools.read_topic(intake.settings.kafka_bootstrap, intake.topics.dlq(intake.topics.inbound),
                                          until=lambda rs: len(rs) >= count, decode=False)
    await intake.caught_up("inbound", intake.topics.inbound)
    assert len(letters) == count
    return {r.value: (r, {k: v.decode() for k, v in r.headers}) for r in letters}


async def test_kafka_intake_applies_valid_events_and_dead_letters_the_rest(isolated, tmp_path):
    async with stack(isolated) as intake:
        await intake.post(plan("SO-KHDT", "K-PLAN", "KH-1", ["T-1", "T-2"]))
        valid = [update("SO-KHDT", "K-UPD", "T-1"), update("VPTU", "V-UPD", "T-2", status="blocked", progress=10),
                 plan("SO-TC", "TC-PLAN", "KH-TC", ["TC-T1"])]
        bad_schema = update("SO-KHDT", "K-BAD", "T-1", progress=150, reported_by=None)
        invalid = {
            "random": b"\xff" + os.urandom(120),
            "schema": structured(bad_schema),
            "unit": structured(plan("H-MOI", "M-PLAN", "KH-MOI", ["M-T1"])),
            "size": structured(update("SO-KHDT", "K-BIG", "T-1", note="Ghi chú dài. " * 400)),
            "array": b"[" + structured(update("SO-KHDT", "K-ARR", "T-1")) + b"]",
        }
        assert len(invalid["size"]) > MAX_BYTES
        await intake.produce([signed(structured(valid[0])), signed(invalid["random"]),
                              signed(structured(valid[1]), "VPTU"), signed(invalid["schema"]),
                              signed(invalid["unit"], "H-MOI"), signed(invalid["size"]), signed(invalid["array"]),
                              signed(structured(valid[2]), "SO-TC")])

        for source, event_id in [("SO-KHDT", "K-PLAN"), ("SO-KHDT", "K-UPD"), ("VPTU", "V-UPD"), ("SO-TC", "TC-PLAN")]:
            assert await intake.outcome(source, event_id) == "applied", event_id

        dlq = intake.topics.dlq(intake.topics.inbound)
        by_value = await dead_letters(intake, 5)
        assert set(by_value) == set(invalid.values())  # bytes unchanged, each once
        reasons = {name: (by_value[value][1]["nqt-dlq-error-class"], by_value[value][1]["nqt-dlq-error-message"])
                   for name, value in invalid.items()}
        assert reasons["random"][0] == "Malformed" and "not valid JSON" in reasons["random"][1]
        assert reasons["schema"][0] == "SchemaInvalid"
        assert "/data/progress:" in reasons["schema"][1] and "/data/reported_by:" in reasons["schema"][1]
        assert reasons["unit"] == ("UnknownUnit", "unknown unit 'H-MOI' at /source: not in the registry")
        assert reasons["size"][0] == "TooLarge" and f"at most {MAX_BYTES}" in reasons["size"][1]
        assert reasons["array"][0] == "Malformed" and "JSON array" in reasons["array"][1]
        assert all(h["nqt-dlq-original-topic"] == intake.topics.inbound and h["nqt-dlq-attempts"] == "1"
                   and h["content-type"] == "application/cloudevents+json" for _, h in by_value.values())
        for source, event_id in [("SO-KHDT", "K-BAD"), ("SO-KHDT", "K-BIG"), ("SO-KHDT", "K-ARR"), ("H-MOI", "M-PLAN")]:
            assert (await intake.status(source, event_id))[0] == 404, event_id  # nothing of them was accepted

        listing = await nqt_dlq(isolated, "list")
        assert f"{dlq}: 5 dead letter(s)" in listing
        assert all(listing.count(cls) == n for cls, n in
                   [("Malformed:", 2), ("SchemaInvalid:", 1), ("UnknownUnit:", 1), ("TooLarge:", 1)])
        assert "unknown unit 'H-MOI'" in listing and '"id":"K-BAD"' in listing.replace(" ", "")
        assert f"{dlq}: 5 dead letter(s), the last 2 shown" in await nqt_dlq(isolated, "list", "--limit", "2")

        # The unit fixes its record and signs the fix; the operator sends it in the bad one's place.
        record, _ = by_value[invalid["schema"]]
        fixed = tmp_path / "fixed.json"
        fixed.write_bytes(structured(update("SO-KHDT", "K-BAD", "T-1", progress=60)))
        fresh = [f"--header={name}={value.decode()}" for name, value in signature(fixed.read_bytes(), "SO-KHDT")]
        said = await nqt_dlq(isolated, "replay", "--offset", str(record.offset), "--partition", str(record.partition),
                             "--from-file", str(fixed), *fresh)
        assert f"to {intake.topics.inbound}" in said and "SchemaInvalid" in said
        assert await intake.outcome("SO-KHDT", "K-BAD") == "applied"

        # Refused because its unit was not in ingest's registry copy yet: once it is, the
        # unchanged dead letter goes through (its signature is still fresh).
        await isolated.publish_accepted(intake.topics, [samples.envelope(
            "VPTU", "reg-H-MOI", "registry.unit", samples.registry_unit("H-MOI", "Huyện mới", "district"))])
        await kafkatools.read_topic(isolated.kafka, intake.topics.outcomes,
                                    until=lambda rs: any(r["id"] == "reg-H-MOI" for r in rs))
        await intake.caught_up("registry", intake.topics.changes)
        record, _ = by_value[invalid["unit"]]
        await nqt_dlq(isolated, "replay", "--offset", str(record.offset), "--partition", str(record.partition))
        assert await intake.outcome("H-MOI", "M-PLAN") == "applied"

        replayed = await kafkatools.read_topic(isolated.kafka, intake.topics.inbound, decode=False,
                                               until=lambda rs: len(rs) >= 10)
        assert sorted(dict(r.headers)["nqt-replayed-from"].decode() for r in replayed
                      if "nqt-replayed-from" in dict(r.headers)) == sorted(
            f"{dlq}:{r.partition}:{r.offset}" for r, _ in (by_value[invalid["schema"]], by_value[invalid["unit"]]))
        assert len(await dead_letters(intake, 5)) == 5


async def test_only_records_signed_by_their_units_key_get_in(isolated):
    async with stack(isolated) as intake:
        first = signed(structured(update("SO-KHDT", "S-OK", "T-1")), msg_id="msg-first")
        refused = {
            "unsigned": (structured(update("SO-KHDT", "S-UNSIGNED", "T-1")), []),
            "another unit's secret": signed(structured(update("SO-KHDT", "S-FORGED", "T-1")), secret=SECRETS["SO-TC"]),
            "stale": signed(structured(update("SO-KHDT", "S-STALE", "T-1")),
                            at=datetime.now(timezone.utc) - timedelta(minutes=6)),
            "replayed": signed(structured(update("SO-KHDT", "S-REPLAY", "T-1")), msg_id="msg-first"),
            "tampered": (structured(update("SO-KHDT", "S-TAMPERED", "T-1")), first[1]),
        }
        await intake.produce([first, *refused.values(), signed(structured(update("SO-TC", "S-MARK", "T-9")), "SO-TC",
                                                               msg_id="msg-first")])  # another unit's own id

        by_value = await dead_letters(intake, len(refused))
        reasons = {name: by_value[value][1] for name, (value, _) in refused.items()}
        assert {name: h["nqt-dlq-error-class"] for name, h in reasons.items()} == dict.fromkeys(refused,
                                                                                                "Unauthenticated")
        assert "unsigned" in reasons["unsigned"]["nqt-dlq-error-message"]
        assert "too old" in reasons["stale"]["nqt-dlq-error-message"]
        assert "replayed" in reasons["replayed"]["nqt-dlq-error-message"]
        for event_id in ("S-UNSIGNED", "S-FORGED", "S-STALE", "S-REPLAY", "S-TAMPERED"):
            assert (await intake.status("SO-KHDT", event_id))[0] == 404, event_id
        assert (await intake.status("SO-KHDT", "S-OK"))[0] == 200
        assert (await intake.status("SO-TC", "S-MARK"))[0] == 200
        records = await kafkatools.read_topic(isolated.kafka, intake.topics.inbound, decode=False,
                                              until=lambda rs: len(rs) >= 7)
        assert {r.timestamp_type for r in records} == {LOG_APPEND_TIME}  # the broker's clock, not the publisher's


async def test_a_record_read_again_after_a_crash_is_one_acceptance(isolated):
    """Ingest publishes a record's event, then dies before committing its offset: the record
    is read again. Same acceptance, so programs answers with its recorded outcome, and the
    publisher sees one `applied` event, not a duplicate of itself."""
    programs = build_programs(isolated.settings(ProgramsSettings))
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS, ingest_dev_signing_secrets=SECRETS,
                                 ingest_group=f"{isolated.prefix}-ingest")
    async with running(programs):
        async with running(build_ingest(settings)) as client:
            intake = Intake(client, settings)
            await isolated.load_registry(intake.topics, REGISTRY)
            await intake.caught_up("registry", intake.topics.changes)
            await intake.post(plan("SO-KHDT", "C-PLAN", "KH-C", ["C-1"]))
            await intake.produce([signed(structured(update("SO-KHDT", "C-UPD", "C-1")))])
            assert await intake.outcome("SO-KHDT", "C-UPD") == "applied"
            await intake.caught_up("inbound", intake.topics.inbound)
        await rewind(settings, f"{settings.ingest_group}.inbound", intake.topics.inbound)  # as if never committed
        async with running(build_ingest(settings)) as client:
            intake.client = client
            await intake.caught_up("inbound", intake.topics.inbound)
            decided = await kafkatools.read_topic(  # programs has decided the second reading too
                isolated.kafka, intake.topics.outcomes, until=lambda rs: [r["id"] for r in rs].count("C-UPD") == 2)
            await intake.caught_up("", intake.topics.outcomes)
            status = (await intake.status("SO-KHDT", "C-UPD"))[1]
    accepted = await kafkatools.read_topic(isolated.kafka, intake.topics.accepted,
                                           until=lambda rs: [r["id"] for r in rs].count("C-UPD") == 2)
    assert len({r["nqtacceptid"] for r in accepted if r["id"] == "C-UPD"}) == 1  # one acceptance, read twice
    assert [r["outcome"] for r in decided if r["id"] == "C-UPD"] == ["applied", "applied"]
    assert (status["status"], status["duplicates"]) == ("applied", 0)


async def rewind(settings: IngestSettings, group: str, topic: str) -> None:
    """Commit offset 0 for `group` on every partition of `topic` (its consumers are stopped)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        consumer.assign(partitions)
        await consumer.commit({tp: 0 for tp in partitions})
    finally:
        await consumer.stop()
