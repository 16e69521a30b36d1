"""No report goes out without the Office's signature: once a cycle falls due the scheduler
drafts its report (numberless) and tells the Office; an approval numbers it, freezes its
figures and issues it; a draft sent back is drafted again. Two replicas of the reports
service, real Kafka and FerretDB, a replayed clock."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests import kafkatools
from tests.integration.conftest import running
from tests.integration.test_standing_committee_report import registry

from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings
from services.reports.app import build as build_reports
from services.reports.service import BadRequest
from services.reports.settings import ReportsSettings
from shared.claims import RELEASED, Claims

OFFICE = "Nguyễn Văn Chánh"


def reports(isolated, clock: str):
    return build_reports(isolated.settings(ReportsSettings, clock_fixed=clock, reports_schedule_seconds=0.2))


async def generated(isolated) -> list[dict]:
    """Every record on the reports topic so far (one cycle's in the order they were published)."""
    topic = isolated.settings(ReportsSettings).topics.generated
    total = sum((await kafkatools.end_offsets(isolated.kafka, [topic])).values())
    return await kafkatools.read_topic(isolated.kafka, topic, until=lambda rs: len(rs) >= total)


async def statuses(app) -> dict[str, str]:
    return {r["cycle"]: r["status"] for r in await app.state.service().cycle_reports()}


async def drafted(isolated, app, cycles: list[str], revision: int = 1) -> None:
    """Wait until the scheduler drafted `cycles` (this revision) and told the Office."""
    async def told():
        return {(r["cycle"], r["revision"]) for r in await generated(isolated) if r.get("type") == "report.drafted"}
    await kafkatools.eventually(told, lambda seen: {(c, revision) for c in cycles} <= seen, timeout=60)
    await kafkatools.eventually(lambda: statuses(app), lambda s: all(s.get(c) == "draft" for c in cycles),
                                timeout=30)


def pdf_text(pdf: bytes, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


async def test_a_due_report_waits_for_approval_then_is_numbered_once_and_regenerated_exactly(isolated, tmp_path):
    topics = isolated.settings(ReportsSettings).topics
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        one, two = reports(isolated, "2021-04-05T09:00:00+07:00"), reports(isolated, "2021-04-05T09:00:00+07:00")
        async with running(one), running(two) as client:
            await drafted(isolated, one, ["2021-Q1"])
            assert (await client.get("/v1/reports/archive/2021-Q1/json")).status_code == 404  # not issued
            draft = (await client.get("/v1/reports/standing-committee", params={"cycle": "2021-Q1"})).json()
            assert draft["document"]["draft"] and draft["approved_by"] is None
            approvals = await asyncio.gather(one.state.approve(cycle_code="2021-Q1", approver=OFFICE),
                                             two.state.approve(cycle_code="2021-Q1", approver="Người khác"),
                                             one.state.approve(cycle_code="2021-Q1", approver=OFFICE))
            again = await two.state.approve(cycle_code="2021-Q1", approver="Người thứ ba")
            issued = (await client.get("/v1/reports/archive/2021-Q1/json")).json()
            archived_pdf = (await client.get("/v1/reports/archive/2021-Q1/pdf")).content
            params = {"cycle": "2021-Q1", "known_at": issued["known_at"]}
            regenerated = (await client.get("/v1/reports/standing-committee", params=params)).json()
            regenerated_pdf = (await client.get("/v1/reports/standing-committee",
                                                params={**params, "format": "pdf"})).content
            listed = await one.state.service().cycle_reports()
        told = await generated(isolated)
    assert {a["document"]["number_text"] for a in [*approvals, again]} == {"Số 1-BC/VPTU"}
    assert len({a["approved_by"] for a in [*approvals, again]}) == 1  # the first approval stands
    assert [(r.get("type"), r["cycle"]) for r in told] == [("report.drafted", "2021-Q1"),
                                                           ("report.generated", "2021-Q1")]
    assert told[1]["number"] == "Số 1-BC/VPTU" and told[1]["approved_by"] == issued["approved_by"]
    assert issued["approved_by"] in (OFFICE, "Người khác") and issued["approved_at"].startswith("2021-04-05T")
    assert not issued["document"]["draft"]
    assert regenerated == issued  # byte for byte, years later: the very report approved
    assert pdf_text(regenerated_pdf, tmp_path, "again") == pdf_text(archived_pdf, tmp_path, "issued")
    assert [(r["cycle"], r["status"], r["number"], r["approved_by"]) for r in listed] == [
        ("2021-Q1", "issued", 1, issued["approved_by"])]


async def test_a_draft_sent_back_is_drafted_again_and_approved_then(isolated):
    topics = isolated.settings(ReportsSettings).topics
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        app = reports(isolated, "2021-04-05T09:00:00+07:00")
        async with running(app):
            await drafted(isolated, app, ["2021-Q1"])
            for bad in ({"comment": "  "}, {"approver": ""}, {"cycle_code": "2021-Q9"}):
                with pytest.raises(BadRequest):
                    await app.state.send_back(**{"cycle_code": "2021-Q1", "approver": OFFICE,
                                                 "comment": "Bổ sung"} | bad)
            assert await statuses(app) == {"2021-Q1": "draft"}  # bad input changed nothing
            await app.state.send_back(cycle_code="2021-Q1", approver=OFFICE, comment="Bổ sung số liệu Sở Tài chính")
            with pytest.raises(BadRequest, match="sent back"):
                await app.state.approve(cycle_code="2021-Q1", approver=OFFICE)
            await drafted(isolated, app, ["2021-Q1"], revision=2)
            rows = await app.state.service().cycle_reports()
            report = await app.state.approve(cycle_code="2021-Q1", approver=OFFICE)
            with pytest.raises(BadRequest, match="already approved"):
                await app.state.send_back(cycle_code="2021-Q1", approver=OFFICE, comment="Muộn rồi")
        told = await generated(isolated)
    assert [(r["cycle"], r["status"], r["number"], r["comment"]) for r in rows] == [
        ("2021-Q1", "draft", None, "Bổ sung số liệu Sở Tài chính")]
    assert [(r.get("type"), r.get("revision"), r.get("comment")) for r in told] == [
        ("report.drafted", 1, None), ("report.drafted", 2, "Bổ sung số liệu Sở Tài chính"),
        ("report.generated", None, None)]
    assert report["document"]["number_text"] == "Số 1-BC/VPTU" and report["approved_by"] == OFFICE


async def test_replicas_approving_three_reports_at_once_number_them_without_a_gap_or_a_repeat(isolated):
    """On 5 July 2021 2021-Q1, 2021-Q2 and 2021-H1 are all due; each is approved on both replicas at once."""
    topics = isolated.settings(ReportsSettings).topics
    cycles = ["2021-Q1", "2021-Q2", "2021-H1"]
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        one, two = reports(isolated, "2021-07-05T09:00:00+07:00"), reports(isolated, "2021-07-05T09:00:00+07:00")
        async with running(one), running(two):
            await drafted(isolated, one, cycles)
            approvals = await asyncio.gather(*(app.state.approve(cycle_code=c, approver=OFFICE)
                                               for c in cycles for app in (one, two)))
            listed = await two.state.service().cycle_reports()
        told = [r for r in await generated(isolated) if r.get("type") == "report.generated"]
    numbers = {a["cycle"]: a["document"]["number"] for a in approvals}
    assert sorted(numbers.values()) == [1, 2, 3]
    assert all(a["document"]["number"] == numbers[a["cycle"]] for a in approvals)  # both replicas agree
    assert sorted((r["cycle"], r["number"]) for r in told) == sorted(
        (c, f"Số {n}-BC/VPTU") for c, n in numbers.items())  # each issued once
    assert [(r["cycle"], r["status"], r["number"]) for r in listed] == [(c, "issued", numbers[c]) for c in cycles]


async def test_a_scheduler_that_saw_an_approval_in_progress_does_not_issue_its_report_again(isolated, monkeypatch):
    """The scheduler reads 2021-Q1 as approved while the approval still renders, and claims it only
    once the approval has issued it and let the claim go: the report still goes out once."""
    topics = isolated.settings(ReportsSettings).topics
    scheduler_looked, approved = asyncio.Event(), asyncio.Event()
    take = Claims.take

    async def scheduler_late(self, subject, now=None):  # signing's holders are "<replica>/<call>"
        if subject == "issue|2021-Q1" and "/" not in self.holder:
            scheduler_looked.set()
            await approved.wait()
        return await take(self, subject, now)
    monkeypatch.setattr(Claims, "take", scheduler_late)
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        app = reports(isolated, "2021-04-05T09:00:00+07:00")
        async with running(app):
            await drafted(isolated, app, ["2021-Q1"])
            render = app.state.renderer.render

            async def after_the_scheduler_looked(report, fmt, **kwargs):
                await scheduler_looked.wait()
                return await render(report, fmt, **kwargs)
            monkeypatch.setattr(app.state.renderer, "render", after_the_scheduler_looked)
            approval = await app.state.approve(cycle_code="2021-Q1", approver=OFFICE)
            approved.set()
            claims = app.state.service().claims.collection  # the scheduler has had its turn once it lets go
            await kafkatools.eventually(lambda: claims.find_one({"_id": "issue|2021-Q1#1"}),
                                        lambda c: c is not None and c["refreshed_at"] == RELEASED)
            again = await app.state.approve(cycle_code="2021-Q1", approver=OFFICE)
        told = [r for r in await generated(isolated) if r.get("type") == "report.generated"]
    assert approval["document"]["number"] == again["document"]["number"] == 1
    assert [(r["cycle"], r["number"]) for r in told] == [("2021-Q1", "Số 1-BC/VPTU")]


async def test_auto_issue_keeps_issuing_without_sign_off(isolated):
    topics = isolated.settings(ReportsSettings).topics
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        app = build_reports(isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00",
                                              reports_schedule_seconds=0.2, reports_auto_issue=True))
        async with running(app):
            told = await kafkatools.read_topic(isolated.kafka, topics.generated, until=lambda rs: len(rs) >= 1)
    assert [(r.get("type"), r["number"], r["approved_by"]) for r in told] == [
        ("report.generated", "Số 1-BC/VPTU", None)]
