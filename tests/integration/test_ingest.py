"""Ingest against the real Kafka: 202 only after the broker has the events; nothing published on error."""

from __future__ import annotations

import orjson

from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build
from services.ingest.settings import IngestSettings

KEYS = {"key-khdt": "SO-KHDT", "key-tc": "SO-TC"}


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def test_accepted_events_are_in_kafka_with_their_acceptance_stamp(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT")])
    batch = [samples.task_update("SO-KHDT", f"KHDT-{i}", "T-1", "02", "in_progress", 10 * i) for i in range(2, 5)]
    async with running(build(settings)) as client:
        single = await client.post("/v1/events", json=plan, headers=auth("key-khdt"))
        many = await client.post("/v1/events", json=batch, headers=auth("key-khdt"))
        records = await kafkatools.read_topic(settings.kafka_bootstrap, settings.topics.accepted,
                                              until=lambda rs: len(rs) >= 4, decode=False)
    assert single.status_code == 202 and single.json() == {"accepted": 1, "ids": ["KHDT-1"]}
    assert many.status_code == 202 and many.json()["ids"] == ["KHDT-2", "KHDT-3", "KHDT-4"]
    values = [orjson.loads(r.value) for r in records]
    assert {v["id"] for v in values} == {"KHDT-1", "KHDT-2", "KHDT-3", "KHDT-4"}
    assert all(v["nqtacceptedtime"].endswith("Z") and v["nqtacceptid"] for v in values)
    assert {r.key for r in records} == {b"02"}  # one programme, one partition, in order


async def test_rejected_requests_publish_nothing(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    good = samples.task_update("SO-KHDT", "OK-1", "T-1", "02", "in_progress", 10)
    bad = samples.task_update("SO-KHDT", "BAD-1", "T-1", "02", "in_progress", 150)
    async with running(build(settings)) as client:
        no_key = await client.post("/v1/events", json=good)
        unknown_key = await client.post("/v1/events", json=good, headers=auth("nope"))
        other_unit = await client.post("/v1/events", json=good, headers=auth("key-tc"))
        invalid_batch = await client.post("/v1/events", json=[good, bad], headers=auth("key-khdt"))
        malformed = await client.post("/v1/events", content=b"{not json", headers=auth("key-khdt"))
        marker = await client.post("/v1/events", json=samples.task_update("SO-TC", "MARK", "T-1", "02", "blocked", 0),
                                   headers=auth("key-tc"))
        records = await kafkatools.read_topic(settings.kafka_bootstrap, settings.topics.accepted,
                                              until=lambda rs: any(r["id"] == "MARK" for r in rs))
    assert [no_key.status_code, unknown_key.status_code, other_unit.status_code,
            invalid_batch.status_code, malformed.status_code, marker.status_code] == [401, 401, 403, 422, 400, 202]
    assert invalid_batch.headers["content-type"] == "application/problem+json"
    problem = invalid_batch.json()
    assert [(e["index"], e["pointer"]) for e in problem["errors"]] == [(1, "/1/data/progress")]
    assert [r["id"] for r in records] == ["MARK"]  # the good event of the bad batch was not published either
