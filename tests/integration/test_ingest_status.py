"""GET /v1/events/{id}: a publisher finds out the outcome of its own events (contract
section 3), kept by ingest from real `programs.outcomes` records on the real Kafka."""

from __future__ import annotations

from shared import kafka
from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build
from services.ingest.settings import IngestSettings

KEYS = {"key-khdt": "SO-KHDT", "key-tc": "SO-TC"}
KHDT = {"Authorization": "Bearer key-khdt"}
FINDING = {"pointer": "/data/tasks/0/milestones", "code": "missing_roadmap",
           "message_vi": "Nhiệm vụ chưa có lộ trình (ít nhất một mốc).",
           "message_en": "The task has no roadmap (at least one milestone)."}


def outcome(event_id: str, result: str, accept_id: str, source: str = "SO-KHDT", **extra) -> bytes:
    return kafka.dumps({"event_key": f"{source}:{event_id}", "source": source, "id": event_id,
                        "type": "plan.submitted", "programme": "02", "outcome": result,
                        "event_time": "2021-02-10T02:00:00.000000Z", "accepted_at": "2021-02-10T02:00:01.000000Z",
                        "accept_id": accept_id, "decided_at": "2021-02-10T02:00:02.000000Z", **extra})


def rejected(event_id: str, accept_id: str) -> bytes:
    return outcome(event_id, "rejected", accept_id, code="invalid_plan",
                   message_vi="Kế hoạch không hợp lệ (1 nhiệm vụ chưa đạt).",
                   message_en="Invalid plan (1 task(s) do not).", findings=[FINDING])


def plan(event_id: str) -> dict:
    return samples.plan("SO-KHDT", event_id, "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT", milestones=0)])


async def test_a_publisher_follows_its_event_from_accepted_to_its_outcome(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    event_id = "KHDT/2021:000123"  # CloudEvents ids may hold '/' and ':'
    url = f"/v1/events/{event_id}"
    async with running(build(settings)) as client:
        posted = await client.post("/v1/events", json=plan(event_id), headers=KHDT)
        pending = await client.get(url, headers=KHDT)

        async def status():
            return (await client.get(url, headers=KHDT)).json()

        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes, [rejected(event_id, "a1")],
                                 key=b"SO-KHDT")
        decided = await kafkatools.eventually(status, lambda b: b["status"] != "accepted")

        # A second submission of the same key was a duplicate; its record is then read twice.
        again = outcome(event_id, "duplicate", "a2", decided_at="2021-02-11T00:00:00.000000Z")
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes, [again], key=b"SO-KHDT")
        counted = await kafkatools.eventually(status, lambda b: b["duplicates"] > 0)
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes,
                                 [again, outcome("MARK", "applied", "m1")], key=b"SO-KHDT")
        await kafkatools.eventually(lambda: client.get("/v1/events/MARK", headers=KHDT),
                                    lambda r: r.status_code == 200)
        after_redelivery = await status()

        other_unit = await client.get(url, headers={"Authorization": "Bearer key-tc"})
        unknown = await client.get("/v1/events/NO-SUCH-EVENT", headers=KHDT)
        no_key = await client.get(url)

    assert posted.status_code == 202
    assert pending.status_code == 200
    assert pending.json() | {"accepted_at": None} == {
        "id": event_id, "source": "SO-KHDT", "type": "plan.submitted", "status": "accepted",
        "accepted_at": None, "duplicates": 0}
    assert pending.json()["accepted_at"].endswith("Z")
    assert decided == {"id": event_id, "source": "SO-KHDT", "type": "plan.submitted", "status": "rejected",
                       "accepted_at": "2021-02-10T02:00:01.000000Z", "decided_at": "2021-02-10T02:00:02.000000Z",
                       "code": "invalid_plan", "message_vi": "Kế hoạch không hợp lệ (1 nhiệm vụ chưa đạt).",
                       "message_en": "Invalid plan (1 task(s) do not).", "findings": [FINDING], "duplicates": 0}
    assert counted == decided | {"duplicates": 1}  # still the original outcome, with its own decision time
    assert after_redelivery == counted
    assert other_unit.status_code == 404 and unknown.status_code == 404
    assert other_unit.headers["content-type"] == "application/problem+json"
    # Another unit's event looks exactly like one that does not exist: nothing about it leaks.
    assert other_unit.json()["title"] == unknown.json()["title"] == "No such event of this unit"
    assert other_unit.json()["title_vi"] == "Không tìm thấy sự kiện của đơn vị"
    assert other_unit.json()["instance"] == url and "SO-KHDT" not in other_unit.text
    assert no_key.status_code == 401 and no_key.headers["content-type"] == "application/problem+json"


async def test_an_outcome_that_arrives_before_the_acceptance_is_recorded_stays(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    async with running(build(settings)) as client:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes,
                                 [outcome("KHDT-EARLY", "applied", "e1")], key=b"SO-KHDT")

        async def fetch():
            return await client.get("/v1/events/KHDT-EARLY", headers=KHDT)

        await kafkatools.eventually(fetch, lambda r: r.status_code == 200)
        posted = await client.post("/v1/events", json=plan("KHDT-EARLY"), headers=KHDT)
        final = (await fetch()).json()

    assert posted.status_code == 202
    assert final["status"] == "applied" and final["decided_at"] == "2021-02-10T02:00:02.000000Z"
    assert final["accepted_at"] == "2021-02-10T02:00:01.000000Z" and final["duplicates"] == 0
    assert "code" not in final and "findings" not in final


async def test_an_event_sent_again_while_the_first_waits_stays_accepted_with_its_repeat_counted(isolated):
    # An update waiting for its plan has no outcome yet; its second submission is answered
    # `duplicate` at once. The publisher sees its event pending, sent twice, until it is decided.
    settings = isolated.settings(IngestSettings, ingest_dev_keys=KEYS)
    url = "/v1/events/KHDT-WAITING"
    async with running(build(settings)) as client:
        assert (await client.post("/v1/events", json=plan("KHDT-WAITING"), headers=KHDT)).status_code == 202

        async def status():
            return (await client.get(url, headers=KHDT)).json()

        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes,
                                 [outcome("KHDT-WAITING", "duplicate", "w2")], key=b"SO-KHDT")
        waiting = await kafkatools.eventually(status, lambda b: b["duplicates"] > 0)
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.outcomes,
                                 [outcome("KHDT-WAITING", "applied", "w1")], key=b"SO-KHDT")
        decided = await kafkatools.eventually(status, lambda b: b["status"] != "accepted")

    assert (waiting["status"], waiting["duplicates"]) == ("accepted", 1)
    assert (decided["status"], decided["duplicates"]) == ("applied", 1)
