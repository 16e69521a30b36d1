"""Cycles open and reports are issued exactly once, with two replicas of the reports service
running and across a restart, when they are issued without the Office's sign-off
(NQT_REPORTS_AUTO_ISSUE; the sign-off is in test_report_signoff.py). Real Kafka and
FerretDB; a replayed clock."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient

from tests import kafkatools
from tests.integration.conftest import running
from tests.integration.test_standing_committee_report import registry

from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings
from services.reports.app import build as build_reports
from services.reports.settings import ReportsSettings


async def test_two_replicas_open_each_cycle_and_issue_its_report_once(isolated):
    def reports():
        return build_reports(isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00",
                                               reports_schedule_seconds=0.3, reports_auto_issue=True))

    settings = isolated.settings(ReportsSettings)
    topics = settings.topics
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        async with running(reports()), running(reports()) as client:
            generated = await kafkatools.read_topic(isolated.kafka, topics.generated, until=lambda rs: len(rs) >= 1)
            await asyncio.sleep(2)  # many more scheduler runs in both replicas
            pdf = await client.get("/v1/reports/archive/2021-Q1/pdf")
            issued_json = (await client.get("/v1/reports/archive/2021-Q1/json")).json()
            again = (await client.get("/v1/reports/standing-committee",
                                      params={"cycle": "2021-Q1", "known_at": issued_json["known_at"]})).json()
        async with running(reports()):  # a restart
            await asyncio.sleep(2)
        due = await kafkatools.read_topic(isolated.kafka, topics.due, until=lambda rs: len(rs) >= 1)
        generated = await kafkatools.read_topic(isolated.kafka, topics.generated, until=lambda rs: len(rs) >= 1)
    assert [d["cycle"] for d in due] == ["2021-Q1"]  # the only cut-off before 5 April 2021
    assert due[0]["due_date"] == "2021-03-16" and due[0]["id"] == "report-due-2021-Q1"
    assert due[0]["expected_units"] == ["HDND", "MTTQ", "Q-BADINH", "SO-KHDT", "SO-TC", "UBND"]
    assert [(g["cycle"], g["number"]) for g in generated] == [("2021-Q1", "Số 1-BC/VPTU")]
    assert generated[0]["formats"]["pdf"].endswith("/v1/reports/archive/2021-Q1/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert issued_json["document"]["number_text"] == "Số 1-BC/VPTU"
    assert issued_json["document"]["date_text"] == "Hà Nội, ngày 05 tháng 4 năm 2021"  # no zero before April
    assert again == issued_json  # regenerated with its known_at: the very document that was issued


async def test_two_schedulers_racing_over_a_crashed_replicas_claims_issue_each_report_once_in_order(isolated):
    """A replica died while issuing 2021-Q1 (its claim, its archive entry and its number left
    behind) and while claiming 2021-Q2. Two replicas come up on 5 July 2021, when 2021-Q1,
    2021-Q2 and 2021-H1 are all due, and race over what it left."""
    def reports():
        return build_reports(isolated.settings(ReportsSettings, clock_fixed="2021-07-05T09:00:00+07:00",
                                               reports_schedule_seconds=0.2, reports_auto_issue=True))

    settings = isolated.settings(ReportsSettings)
    topics, long_ago = settings.topics, "2021-07-05T00:00:00.000000Z"
    client = AsyncMongoClient(isolated.mongo, tz_aware=True)
    db = client[settings.database("reports")]
    for cycle in ("2021-Q1", "2021-Q2"):
        await db.claims.insert_one({"_id": f"issue|{cycle}#0", "subject": f"issue|{cycle}", "generation": 0,
                                    "holder": "crashed", "refreshed_at": long_ago})
    await db.archive.insert_one({"_id": "2021-Q1", "status": "issuing", "claimed_at": long_ago})
    await db.numbers.insert_one({"_id": "BC|2020-2025|1", "term": "2020-2025", "n": 1, "cycle": "2021-Q1"})
    async with running(build_programs(isolated.settings(ProgramsSettings))):
        await isolated.load_registry(topics, registry())
        async with running(reports()), running(reports()) as api:
            async def issued():
                return [(await api.get(f"/v1/reports/archive/{c}/json")).status_code
                        for c in ("2021-Q1", "2021-Q2", "2021-H1")]
            await kafkatools.eventually(issued, lambda codes: codes == [200, 200, 200], timeout=240, interval=1)
            await asyncio.sleep(2)  # many more scheduler runs in both replicas
        generated = await kafkatools.read_topic(isolated.kafka, topics.generated, until=lambda rs: len(rs) >= 3)
    numbers = [d async for d in db.numbers.find({}, sort=[("n", 1)])]
    await client.close()
    assert sorted((g["number"], g["cycle"]) for g in generated) == [   # one each (keyed by cycle: any order)
        ("Số 1-BC/VPTU", "2021-Q1"), ("Số 2-BC/VPTU", "2021-Q2"), ("Số 3-BC/VPTU", "2021-H1")]
    assert [(d["n"], d["cycle"]) for d in numbers] == [(1, "2021-Q1"), (2, "2021-Q2"), (3, "2021-H1")]
