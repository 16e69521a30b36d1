"""Every rule of the programme, seen as a publisher sees it: POST an event to ingest,
then GET /v1/events/{id} until its outcome, with the exact code. Real Kafka + FerretDB."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build as build_ingest
from services.ingest.settings import IngestSettings
from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings

UNITS = {"VPTU": "office", "SO-KHDT": "department", "SO-TC": "department", "MTTQ": "front",
         "BTC-TU": "party_board", "H-MOI": "district"}  # H-MOI has a key but is not in the registry
REGISTRY = [
    *[samples.envelope("VPTU", f"reg-{u}", "registry.unit", samples.registry_unit(u, f"Đơn vị {u}", kind))
      for u, kind in UNITS.items() if u != "H-MOI"],
    samples.envelope("VPTU", "reg-p02", "registry.programme", samples.registry_programme("02")),
    samples.envelope("VPTU", "reg-ct01", "registry.indicator", {
        "code": "CT-01", "group": 1, "name": "Tốc độ tăng trưởng GRDP", "measure": "%", "direction": "increase",
        "baseline": {"year": 2020, "value": 3.94}, "targets": {"2025": 7.5, "2030": 8.0, "2045": None},
        "responsible_unit": "SO-KHDT", "sample": True}),
    samples.envelope("VPTU", "reg-settings", "registry.settings", {
        "code": "settings", "name": "test", "title": "Chương trình thử nghiệm",
        "term": {"start": "2020-11-02", "end": "2025-12-31"}, "issuer": {"office_symbol": "VPTU"},
        "reporting": {"expected_units": "default", "due_working_days": 2, "recipients": ["VPTU"]}}),
]
KEYS = {f"key-{u}": u for u in UNITS}


class Publisher:
    def __init__(self, client):
        self.client = client

    async def send(self, event: dict) -> None:
        response = await self.client.post("/v1/events", json=event,
                                          headers={"Authorization": f"Bearer key-{event['source']}"})
        assert response.status_code == 202, response.text

    async def outcome(self, event: dict, *, timeout: float = 30) -> dict:
        async def status():
            response = await self.client.get(f"/v1/events/{event['id']}",
                                             headers={"Authorization": f"Bearer key-{event['source']}"})
            return response.json()
        return await kafkatools.eventually(status, lambda s: s.get("status") not in (None, "accepted"),
                                           timeout=timeout)

    async def decided(self, event: dict) -> tuple[str, str | None]:
        await self.send(event)
        status = await self.outcome(event)
        return status["status"], status.get("code")


@asynccontextmanager
async def stack(isolated, **programs_settings):
    programs = build_programs(isolated.settings(ProgramsSettings, **programs_settings))
    ingest = build_ingest(isolated.settings(IngestSettings, ingest_dev_keys=KEYS))
    async with running(programs), running(ingest) as client:
        await isolated.load_registry(isolated.settings(ProgramsSettings).topics, REGISTRY)
        yield Publisher(client)


def plan(source: str, event_id: str, tasks: list[dict], plan_id: str = "KH-1", programme: str = "02",
         time: str = "2021-02-10T09:00:00+07:00") -> dict:
    return samples.plan(source, event_id, plan_id, programme, tasks, time=time)


def update(source: str, event_id: str, task_id: str, status: str = "in_progress", progress: float = 50,
           time: str = "2021-03-20T08:30:00+07:00", programme: str = "02") -> dict:
    return samples.task_update(source, event_id, task_id, programme, status, progress, time=time)


async def test_plan_rules(isolated):
    async with stack(isolated) as p:
        incomplete = plan("SO-TC", "TC-1", [samples.task("TC-T1", lead_unit="SO-TC", milestones=0),
                                            samples.task("TC-T2", lead_unit="SO-TC"),
                                            samples.task("TC-T3", lead_unit="H-KHONG-CO")])
        await p.send(incomplete)
        rejected = await p.outcome(incomplete)
        assert (rejected["status"], rejected["code"]) == ("rejected", "invalid_plan")
        assert [f["pointer"] for f in rejected["findings"]] == ["/data/tasks/0/milestones", "/data/tasks/2/lead_unit"]
        assert rejected["message_vi"] and rejected["message_en"]
        assert await p.decided(plan("SO-KHDT", "K-0", [samples.task("TC-T2", lead_unit="SO-KHDT")], plan_id="KH-X")) \
            == ("applied", None)  # nothing of the rejected plan was applied: its task id is still free
        assert await p.decided(plan("SO-KHDT", "K-1", [samples.task("K-T1", lead_unit="SO-KHDT")],
                                    programme="09")) == ("rejected", "unknown_programme")
        assert await p.decided(plan("H-MOI", "M-1", [samples.task("M-T1", lead_unit="SO-KHDT")])) \
            == ("rejected", "unknown_unit")
        newer = plan("SO-KHDT", "K-3", [samples.task("K-T1", lead_unit="SO-KHDT")], time="2021-02-20T09:00:00+07:00")
        older = plan("SO-KHDT", "K-2", [samples.task("K-T1", lead_unit="SO-KHDT"), samples.task("K-T2", lead_unit="SO-KHDT")],
                     time="2021-02-15T09:00:00+07:00")
        assert await p.decided(newer) == ("applied", None)
        assert await p.decided(older) == ("rejected", "superseded")
        await p.send(newer)
        again = await p.outcome(newer)
        assert (again["status"], await _duplicates(p, newer)) == ("applied", 1)


async def _duplicates(p: Publisher, event: dict) -> int:
    status = await kafkatools.eventually(lambda: p.outcome(event), lambda s: s["duplicates"] >= 1)
    return status["duplicates"]


async def test_task_update_rules(isolated):
    async with stack(isolated) as p:
        assert await p.decided(plan("SO-KHDT", "K-1", [samples.task("T-1", lead_unit="SO-KHDT"),
                                                       samples.task("T-2", lead_unit="SO-KHDT")])) == ("applied", None)
        assert await p.decided(update("SO-TC", "TC-1", "T-1")) == ("rejected", "forbidden")
        assert await p.decided(update("VPTU", "V-1", "T-1", progress=20)) == ("applied", None)
        assert await p.decided(update("SO-KHDT", "K-2", "T-1", programme="01")) == ("rejected", "unknown_programme")
        assert await p.decided(plan("SO-KHDT", "K-3", [samples.task("T-1", lead_unit="SO-KHDT")],
                                    time="2021-02-11T09:00:00+07:00")) == ("applied", None)  # drops T-2
        assert await p.decided(update("SO-KHDT", "K-4", "T-2")) == ("rejected", "task_cancelled")


async def test_an_update_before_its_plan_is_held_then_applied(isolated):
    async with stack(isolated) as p:
        early = update("SO-KHDT", "K-EARLY", "T-9", status="blocked", progress=10)
        await p.send(early)
        assert (await p.client.get("/v1/events/K-EARLY", headers={"Authorization": "Bearer key-SO-KHDT"})).json()[
            "status"] == "accepted"  # held: not lost, not decided yet
        await p.send(plan("SO-KHDT", "K-PLAN", [samples.task("T-9", lead_unit="SO-KHDT")]))
        assert (await p.outcome(early))["status"] == "applied"


async def test_an_update_whose_plan_never_comes_is_rejected_after_the_wait(isolated):
    async with stack(isolated, programs_hold_seconds=1.0, programs_sweep_seconds=0.3) as p:
        orphan = update("SO-KHDT", "K-ORPHAN", "T-NOWHERE")
        await p.send(orphan)
        status = await p.outcome(orphan)
        assert (status["status"], status["code"]) == ("rejected", "unknown_task")


@pytest.mark.parametrize("event, outcome", [
    (samples.envelope("VPTU", "V-ISSUE", "programme.issued", {
        "programme": "02", "document_no": "02-CTr/TU", "issued_on": "2021-03-17",
        "steering_committee": {"decision_no": "102-QĐ/TU", "established_on": "2021-03-24",
                               "head": {"name": "Nguyễn Văn An", "position": "Phó Bí thư"}}}), ("applied", None)),
    (samples.envelope("SO-KHDT", "K-ISSUE", "programme.issued", {
        "programme": "02", "document_no": "02-CTr/TU", "issued_on": "2021-03-17"}), ("rejected", "forbidden")),
    (samples.envelope("SO-KHDT", "K-IND", "indicator.reported", {"indicator": "CT-01", "period": "2021", "value": 2.92}),
     ("applied", None)),
    (samples.envelope("SO-TC", "TC-IND", "indicator.reported", {"indicator": "CT-01", "period": "2021", "value": 3}),
     ("rejected", "forbidden")),
    (samples.envelope("SO-KHDT", "K-IND9", "indicator.reported", {"indicator": "CT-99", "period": "2021", "value": 1}),
     ("rejected", "unknown_indicator")),
    (samples.envelope("SO-TC", "TC-REP", "unit-report.submitted", {
        "cycle": "2021-Q1", "document_no": "12/BC-STC", "summary": "Đã triển khai kế hoạch."}), ("applied", None)),
    (samples.envelope("BTC-TU", "BTC-REP", "unit-report.submitted", {
        "cycle": "2021-Q1", "document_no": "5/BC-BTCTU", "summary": "Báo cáo."}), ("rejected", "forbidden")),
    (samples.envelope("SO-TC", "TC-REP9", "unit-report.submitted", {
        "cycle": "2031-Q1", "document_no": "1/BC", "summary": "Báo cáo."}), ("rejected", "unknown_cycle")),
    (samples.envelope("MTTQ", "MT-SUP", "supervision.recorded", {
        "programme": "02", "kind": "giam_sat", "finding": "Tiến độ giải ngân chậm.", "unit": "SO-KHDT"}),
     ("applied", None)),
    (samples.envelope("SO-TC", "TC-SUP", "supervision.recorded", {
        "programme": "02", "kind": "phan_bien", "finding": "Ý kiến."}), ("rejected", "forbidden")),
    (samples.envelope("MTTQ", "MT-SUP9", "supervision.recorded", {
        "programme": "02", "kind": "giam_sat", "finding": "Chậm.", "unit": "SO-KHONG"}), ("rejected", "unknown_unit")),
], ids=lambda v: v["id"] if isinstance(v, dict) else "")
async def test_who_may_send_what(isolated, event, outcome):
    async with stack(isolated) as p:
        assert await p.decided(event) == outcome
