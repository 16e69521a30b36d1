"""Hostile events at ingest's door, against the real Kafka and FerretDB: whatever a unit
sends, it gets a precise 4xx naming the event and field (never a 5xx that invites it to
send the same again for ever), nothing of it is published, and the window for an
event's time follows the registry's term as soon as ingest learns it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from shared import kafka
from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build
from services.ingest.settings import IngestSettings

KEYS = {"key-khdt": "SO-KHDT"}
AUTH = {"Authorization": "Bearer key-khdt"}


def update(event_id: str, **top) -> dict:
    return samples.task_update("SO-KHDT", event_id, "SO-KHDT-T-1", "02", "in_progress", 10) | top


def deep(depth: int):
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


async def accepted_ids(settings, marker: str) -> list[str]:
    records = await kafkatools.read_topic(settings.kafka_bootstrap, settings.topics.accepted,
                                          until=lambda rs: any(r["id"] == marker for r in rs))
    return [r["id"] for r in records]


async def test_hostile_events_get_a_4xx_naming_the_field_and_nothing_is_published(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    big_plan = samples.plan("SO-KHDT", "BIG-PLAN", "KH-BIG", "02",
                            [samples.task(f"T-{i}", lead_unit="SO-KHDT") | {"title": "Nhiệm vụ " * 220}
                             for i in range(300)])
    hostile = {
        "huge extension": update("H-1", trace="x" * 1_200_000),    # once: Kafka refused it, 503 "send again"
        "deep extension": update("H-2", trace=deep(300)),          # once: unserialisable, 503 "send again"
        "year 1": update("H-3", time="0001-01-01T00:00:00+07:00"),
        "year 9999": update("H-4", time="9999-12-31T23:59:59+07:00"),
        "year 999": update("H-5", time="0999-06-01T00:00:00+07:00"),
        "an hour ahead": update("H-6", time=(datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()),
    }
    async with running(build(settings)) as client:
        answers = {name: await client.post("/v1/events", json=[update("OK-0"), event], headers=AUTH)
                   for name, event in hostile.items()}
        too_big = await client.post("/v1/events", json=[update("OK-1"), big_plan], headers=AUTH)
        marker = await client.post("/v1/events", json=update("MARK"), headers=AUTH)
        published = await accepted_ids(settings, "MARK")

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(hostile, 422)
    pointers = {name: [e["pointer"] for e in r.json()["errors"]] for name, r in answers.items()}
    assert pointers == {"huge extension": ["/1/trace"], "deep extension": ["/1/trace"], "year 1": ["/1/time"],
                        "year 9999": ["/1/time"], "year 999": ["/1/time"], "an hour ahead": ["/1/time"]}
    assert all(r.headers["content-type"] == "application/problem+json" for r in answers.values())
    assert too_big.status_code == 413 and [e["index"] for e in too_big.json()["errors"]] == [1]
    assert marker.status_code == 202 and published == ["MARK"]


async def test_the_time_window_opens_a_year_before_the_registrys_term(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    before_term = "2019-06-01T09:00:00+07:00"  # after the 2000 floor, more than a year before 2020-11-02
    settings_change = {"kind": "settings", "id": "settings", "programme": None, "seq": 0, "old": None,
                       "state": {"code": "settings", "term": {"start": "2020-11-02", "end": "2025-12-31"}}}
    async with running(build(settings)) as client:
        early = await client.post("/v1/events", json=update("EARLY-1", time=before_term), headers=AUTH)
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, [kafka.dumps(settings_change)],
                                 key=b"settings")
        refused = await kafkatools.eventually(
            lambda: client.post("/v1/events", json=update("EARLY-2", time=before_term), headers=AUTH),
            lambda r: r.status_code != 202)
        in_term = await client.post("/v1/events", json=update("IN-TERM", time="2019-11-02T00:00:00+07:00"),
                                    headers=AUTH)

    assert early.status_code == 202 and in_term.status_code == 202
    assert refused.status_code == 422 and [e["pointer"] for e in refused.json()["errors"]] == ["/time"]
    assert "2019-11-02T00:00:00+07:00" in refused.json()["errors"][0]["detail"]
