"""Systems that publish straight to Kafka: CloudEvents built with the real SDK, some over
HTTP and some as records on `inbound.events`, end applied alike; anything that cannot be
accepted is on `inbound.events.dlq`, bytes unchanged, with the reason in its headers, and
the intake keeps moving. `nqt dlq list/replay` show and resend dead letters.
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
from services.ingest.settings import IngestSettings
from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings

ROOT = Path(__file__).resolve().parents[2]
HANOI = timezone(timedelta(hours=7))
MAX_BYTES = 4096
UNITS = ("VPTU", "SO-KHDT", "SO-TC")  # H-MOI has a key but joins the registry only later
KEYS = {f"key-{u}": u for u in (*UNITS, "H-MOI")}
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


class Intake:
    def __init__(self, client, settings: IngestSettings):
        self.client, self.settings = client, settings
        self.topics = settings.topics

    async def post(self, event: CloudEvent) -> None:
        message = ce_http.to_structured_event(event)
        response = await self.client.post("/v1/events", content=message.body,
                                          headers={**message.headers, **auth(event.get_source())})
        assert response.status_code == 202, response.text

    async def produce(self, values: list[bytes], headers: list[tuple[str, bytes]] | None = None) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(self.topics.inbound, value, headers=headers or [])
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
        """Records of `topic` that ingest's consumer group `<ingest_group>.<role>` has not committed yet."""
        group = f"{self.settings.ingest_group}.{role}"
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
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS, ingest_max_body_bytes=MAX_BYTES,
                                 ingest_group=f"{isolated.prefix}-ingest")
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
        sys.executable, "-c", "from shared.cli_dlq import dlq_app; dlq_app()", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


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
        await intake.produce([structured(valid[0]), invalid["random"], structured(valid[1]), invalid["schema"],
                              invalid["unit"], invalid["size"], invalid["array"], structured(valid[2])],
                             headers=[("content-type", b"application/cloudevents+json")])

        for source, event_id in [("SO-KHDT", "K-PLAN"), ("SO-KHDT", "K-UPD"), ("VPTU", "V-UPD"), ("SO-TC", "TC-PLAN")]:
            assert await intake.outcome(source, event_id) == "applied", event_id

        dlq = intake.topics.dlq(intake.topics.inbound)
        letters = await kafkatools.read_topic(isolated.kafka, dlq, until=lambda rs: len(rs) >= 5, decode=False)
        await intake.caught_up("inbound", intake.topics.inbound)
        by_value = {r.value: (r, {k: v.decode() for k, v in r.headers}) for r in letters}
        assert len(letters) == 5 and set(by_value) == set(invalid.values())  # bytes unchanged, each once
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

        # A fixed record replaces the bad one; it ends applied like any other.
        record, _ = by_value[invalid["schema"]]
        fixed = tmp_path / "fixed.json"
        fixed.write_bytes(structured(update("SO-KHDT", "K-BAD", "T-1", progress=60)))
        said = await nqt_dlq(isolated, "replay", "--offset", str(record.offset), "--partition", str(record.partition),
                             "--from-file", str(fixed))
        assert f"to {intake.topics.inbound}" in said and "SchemaInvalid" in said
        assert await intake.outcome("SO-KHDT", "K-BAD") == "applied"

        # Refused because its unit was not in ingest's registry copy yet: once it is, the
        # unchanged dead letter goes through.
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
        await intake.caught_up("inbound", intake.topics.inbound)
        assert len(await kafkatools.read_topic(isolated.kafka, dlq, until=lambda rs: len(rs) >= 5, decode=False)) == 5
