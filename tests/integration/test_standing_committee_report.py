"""The report to the Standing Committee on a fixed scenario, every number checked
against values worked out by hand from the contract's definitions. Events go
through the real programs and reports services on Kafka and FerretDB, with the
arrival times a replay of 2021 would have."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared import accepted
from shared.events import parse_event
from tests import kafkatools, samples
from tests.integration.conftest import running

from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings
from services.reports.app import build as build_reports
from services.reports.settings import ReportsSettings

UNITS = {"VPTU": "office", "BTV": "standing_committee", "SO-KHDT": "department", "SO-TC": "department",
         "Q-BADINH": "district", "HDND": "council", "UBND": "people_committee", "MTTQ": "front"}


def registry() -> list[dict]:
    def programme(code: str) -> dict:
        return {**samples.registry_programme(code, f"Chương trình {code}"), "issue_by": "2021-03-31"}

    return [
        *[samples.envelope("VPTU", f"r-{u}", "registry.unit", samples.registry_unit(u, f"Đơn vị {u}", kind))
          for u, kind in UNITS.items()],
        samples.envelope("VPTU", "r-01", "registry.programme", programme("01")),
        samples.envelope("VPTU", "r-02", "registry.programme", programme("02")),
        samples.envelope("VPTU", "r-ct01", "registry.indicator", {
            "code": "CT-01", "group": 1, "name": "Tăng trưởng GRDP", "measure": "%", "direction": "increase",
            "baseline": {"year": 2020, "value": 4.0}, "targets": {"2025": 9.0, "2030": None, "2045": None},
            "responsible_unit": "SO-KHDT", "sample": True}),
        samples.envelope("VPTU", "r-settings", "registry.settings", {
            "code": "settings", "name": "test", "title": "Chương trình hành động thử nghiệm",
            "term": {"start": "2020-11-02", "end": "2025-12-31"},
            "issuer": {"party_committee": "ĐẢNG BỘ THÀNH PHỐ HÀ NỘI", "office": "VĂN PHÒNG THÀNH ỦY",
                       "office_symbol": "VPTU", "place": "Hà Nội"},
            "reporting": {"expected_units": "default", "due_working_days": 2, "recipients": ["BTV"]}}),
    ]


def at(day_time: str) -> str:
    return f"2021-{day_time}:00+07:00"


def task(task_id: str, lead: str, due: str) -> dict:
    return samples.task(task_id, lead_unit=lead, due=due)


def report(unit: str, event_id: str, time: str) -> dict:
    return samples.envelope(unit, event_id, "unit-report.submitted",
                            {"cycle": "2021-Q1", "document_no": f"{event_id}/BC", "summary": "Báo cáo quý I."}, time)


def issued(code: str, day: str, steering_day: str) -> dict:
    return samples.envelope("VPTU", f"V-ISS-{code}", "programme.issued", {
        "programme": code, "document_no": f"{code}-CTr/TU", "issued_on": day,
        "steering_committee": {"decision_no": f"1{code}-QĐ/TU", "established_on": steering_day,
                               "head": {"name": "Nguyễn Văn An", "position": "Phó Bí thư Thành ủy"}}},
        f"{day}T09:00:00+07:00")


# (event, arrival time). Arrival equals event time except where a late arrival is the point.
SCENARIO = [
    (issued("01", "2021-03-05", "2021-03-10"), at("03-05T09:00")),
    (issued("02", "2021-04-02", "2021-04-02"), at("04-02T09:00")),
    (samples.plan("SO-KHDT", "K-PLAN-1", "KH-A", "01", [task("A1", "SO-KHDT", "2021-02-28"),
                                                         task("A2", "SO-KHDT", "2021-06-10"),
                                                         task("A3", "SO-KHDT", "2021-03-31")],
                  time=at("01-10T09:00")), at("01-10T09:05")),
    (samples.plan("SO-TC", "TC-PLAN-1", "KH-B", "02", [task("B1", "SO-TC", "2021-03-10"),
                                                        task("B2", "SO-TC", "2021-12-31")],
                  time=at("01-20T09:00")), at("01-20T09:05")),
    (samples.plan("Q-BADINH", "BD-PLAN-1", "KH-C", "02", [samples.task("C1", lead_unit="Q-BADINH", milestones=0)],
                  time=at("02-01T09:00")), at("02-01T09:05")),
    (samples.plan("SO-KHDT", "K-PLAN-2", "KH-A", "01", [task("A1", "SO-KHDT", "2021-02-28"),
                                                         task("A2", "SO-KHDT", "2021-06-10")],
                  time=at("03-01T09:00")), at("03-01T09:05")),   # a revision: A3 dropped, so cancelled
    (samples.task_update("SO-KHDT", "K-U1", "A1", "01", "completed", 100, time=at("02-25T10:00")), at("02-25T10:01")),
    (samples.task_update("SO-KHDT", "K-U2", "A2", "01", "in_progress", 40, time=at("03-10T10:00")), at("03-10T10:01")),
    (samples.task_update("SO-TC", "TC-U1", "B1", "02", "in_progress", 60, time=at("03-05T10:00")), at("03-05T10:01")),
    (samples.task_update("SO-TC", "TC-U2", "B2", "02", "blocked", 10, time=at("03-12T10:00")), at("03-12T10:01")),
    (samples.task_update("SO-KHDT", "K-U3", "A2", "01", "in_progress", 70, time=at("03-20T10:00")), at("03-20T10:01")),
    # Happened before the cut-off, arrived after the report was issued on 5 April.
    (samples.task_update("SO-TC", "TC-U3", "B1", "02", "completed", 100, time=at("03-13T16:00")), at("04-10T08:00")),
    (samples.envelope("SO-KHDT", "K-IND1", "indicator.reported", {"indicator": "CT-01", "period": "2021-Q1",
                                                                  "value": 6.5}, at("03-12T11:00")), at("03-12T11:01")),
    (samples.envelope("MTTQ", "MT-SUP1", "supervision.recorded", {
        "programme": "02", "kind": "giam_sat", "finding": "Tiến độ nhiệm vụ B1 chậm.", "unit": "SO-TC"},
        at("03-08T09:00")), at("03-08T09:01")),
    (report("SO-KHDT", "K-BC1", at("03-15T09:00")), at("03-15T09:01")),
    (report("SO-TC", "TC-BC1", at("03-18T09:00")), at("03-18T09:01")),
    (report("HDND", "HD-BC1", at("03-16T20:00")), at("03-16T20:01")),
    (report("MTTQ", "MT-BC1", at("03-17T00:30")), at("03-17T00:31")),
    (report("UBND", "UB-BC1", at("03-16T10:00")), at("04-10T09:00")),  # on time, but known only on 10 April
]


@pytest.fixture
async def deployment(isolated):
    programs = build_programs(isolated.settings(ProgramsSettings))
    reports = build_reports(isolated.settings(ReportsSettings, reports_scheduler=False,
                                              clock_fixed="2021-07-01T09:00:00+07:00"))
    topics = isolated.settings(ProgramsSettings).topics
    async with running(programs), running(reports) as client:
        await isolated.load_registry(topics, registry())
        stamped = [accepted.stamp(parse_event(event), now=datetime.fromisoformat(arrival))
                   for event, arrival in SCENARIO]
        for key, value in stamped:
            await kafkatools.produce(isolated.kafka, topics.accepted, [value], key=key.encode())
        await kafkatools.read_topic(isolated.kafka, topics.outcomes,
                                    until=lambda rs: len(rs) >= len(registry()) + len(SCENARIO))

        async def everything_known():  # reports applies the changes on its own: wait for every fact
            q1 = (await client.get("/v1/reports/standing-committee",
                                   params={"cycle": "2021-Q1", "known_at": "2021-07-01"})).json()
            q2 = (await client.get("/v1/reports/standing-committee",
                                   params={"cycle": "2021-Q2", "known_at": "2021-07-01"})).json()
            return (q1["reports_summary"]["on_time"] + q1["reports_summary"]["late"],
                    q1["programmes"][1]["tasks"]["completed"], q2["programmes"][0]["progress_pct"],
                    len(q1["supervisions"]), q1["indicators"][0]["latest"] is not None)

        await kafkatools.eventually(everything_known, lambda known: known == (5, 1, 85.0, 1, True))
        yield client


async def get(client, **params) -> dict:
    response = await client.get("/v1/reports/standing-committee", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_number_of_the_first_quarter_as_issued_on_5_april(deployment):
    r = await get(deployment, cycle="2021-Q1", known_at="2021-04-05")
    assert (r["cycle"], r["as_of"], r["window"], r["due_date"]) == (
        "2021-Q1", "2021-03-14", {"start": "2020-12-15", "cut_off": "2021-03-14"}, "2021-03-16")
    p01, p02 = r["programmes"]
    assert (p01["issued"], p01["steering_committee"]["decision_no"], p02["issued"]) == (True, "101-QĐ/TU", False)
    assert p01["plans"] == {"expected": 0, "submitted": 1, "rejected": 0}
    assert p02["plans"] == {"expected": 0, "submitted": 1, "rejected": 1}
    assert p01["tasks"] == {"total": 3, "not_started": 0, "in_progress": 1, "completed": 1, "blocked": 0,
                            "cancelled": 1, "overdue": 0}
    assert p01["progress_pct"] == 70.0                      # (100 + 40) / 2, the cancelled A3 left out
    assert p02["tasks"] == {"total": 2, "not_started": 0, "in_progress": 1, "completed": 0, "blocked": 1,
                            "cancelled": 0, "overdue": 1}   # B1 due 10 March, not done by 14 March
    assert p02["progress_pct"] == 35.0
    assert r["deadline_q1_2021"] == {"deadline": "2021-03-31", "issued_on_time": 1, "steering_on_time": 1,
                                     "total": 2, "missed": [{"code": "02", "issued_on": None,
                                                             "steering_established_on": None}]}
    assert r["indicators"] == [{**r["indicators"][0], "latest": {"period": "2021-Q1", "value": 6.5},
                                "target_2025": 9.0, "status": "on_track"}]  # 6.5 >= 4 + (9 - 4) / 5
    units = {u["code"]: (u["report"]["status"] if u["report"] else None, u["tasks_overdue"]) for u in r["units"]}
    assert units == {"SO-KHDT": ("on_time", 0), "SO-TC": ("late", 1), "HDND": ("on_time", 0),
                     "UBND": ("missing", 0), "MTTQ": ("late", 0), "Q-BADINH": ("missing", 0)}
    assert r["reports_summary"] == {"expected": 6, "on_time": 2, "late": 2, "missing": 2}
    assert [(t["task_id"], t["lead_person"]["name"]) for t in r["overdue_tasks"]] == [("B1", "Nguyễn Văn An")]
    assert [s["finding"] for s in r["supervisions"]] == ["Tiến độ nhiệm vụ B1 chậm."]
    assert (r["next_period"]["cycle"], [t["task_id"] for t in r["next_period"]["tasks_due"]]) == ("2021-Q2", ["A2"])
    assert r["totals"]["tasks"]["total"] == 5 and r["totals"]["progress_pct"] == 52.5  # (100+40+60+10)/4
    assert r["document"]["date_text"].startswith("Hà Nội, ngày") and r["document"]["draft"] is True
    assert r["known_on"] == "2021-04-05"


async def test_a_replayed_term_never_says_it_received_information_after_its_own_day(deployment):
    """The clock is pinned to 1 July 2021; the arrival times (known_at) are the wall clock's."""
    r = await get(deployment, cycle="2021-Q1")
    html = (await deployment.get("/v1/reports/standing-committee", params={"cycle": "2021-Q1",
                                                                           "format": "html"})).text
    assert r["known_at"] > "2024" and r["known_on"] == "2021-07-01"
    assert r["document"]["date_text"] == "Hà Nội, ngày 01 tháng 7 năm 2021"
    assert "theo thông tin nhận được đến ngày 01 tháng 7 năm 2021." in html


async def test_late_arrivals_change_a_later_regeneration_but_never_the_past(deployment):
    issued = await get(deployment, cycle="2021-Q1", known_at="2021-04-05")
    again = await get(deployment, cycle="2021-Q1", known_at="2021-04-05")
    later = await get(deployment, cycle="2021-Q1", known_at="2021-04-12")
    assert {k: v for k, v in again.items() if k != "document"} == {k: v for k, v in issued.items() if k != "document"}
    p02 = later["programmes"][1]
    assert p02["tasks"]["completed"] == 1 and p02["tasks"]["overdue"] == 0 and p02["progress_pct"] == 55.0
    assert later["reports_summary"] == {"expected": 6, "on_time": 3, "late": 2, "missing": 1}
    assert later["overdue_tasks"] == []


async def test_the_next_quarter_sees_what_happened_after_the_cut_off(deployment):
    r = await get(deployment, cycle="2021-Q2", known_at="2021-07-01")
    p01, p02 = r["programmes"]
    assert p01["progress_pct"] == 85.0 and p02["issued"] is True  # A2 at 70 %; 02 issued on 2 April
    assert r["deadline_q1_2021"]["missed"] == [{"code": "02", "issued_on": "2021-04-02",
                                               "steering_established_on": "2021-04-02"}]
    assert {u["code"]: u["report"]["status"] for u in r["units"] if u["report"]}["SO-KHDT"] == "missing"


async def test_a_bad_cycle_is_a_clear_400(deployment):
    response = await deployment.get("/v1/reports/standing-committee", params={"cycle": "2021-Q5"})
    assert response.status_code == 400 and "2021-Q5" in response.text


async def test_the_pdf_and_the_word_document_say_the_same(deployment, tmp_path):
    import io
    import subprocess
    import unicodedata

    from docx import Document

    numbers = await get(deployment, cycle="2021-Q1", known_at="2021-04-05")
    pdf = await deployment.get("/v1/reports/standing-committee",
                               params={"cycle": "2021-Q1", "known_at": "2021-04-05", "format": "pdf"})
    (tmp_path / "r.pdf").write_bytes(pdf.content)
    text = unicodedata.normalize("NFC", subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"],
                                                       capture_output=True, text=True, check=True).stdout)
    for expected in ("ĐẢNG BỘ THÀNH PHỐ HÀ NỘI", "VĂN PHÒNG THÀNH ỦY", "ĐẢNG CỘNG SẢN VIỆT NAM", "BÁO CÁO",
                     "quý I/2021", "I. KẾT QUẢ THỰC HIỆN", "II. HẠN CHẾ, TỒN TẠI", "III. NHIỆM VỤ KỲ TỚI",
                     "Nguyễn Văn An", "Tiến độ nhiệm vụ B1 chậm."):
        assert expected in text, expected
    docx = await deployment.get("/v1/reports/standing-committee",
                                params={"cycle": "2021-Q1", "known_at": "2021-04-05", "format": "docx"})
    document = Document(io.BytesIO(docx.content))
    annex = next(t for t in document.tables if t.rows[0].cells[0].text == "Mã" and len(t.rows) == 3
                 and t.rows[1].cells[0].text == "01")
    p01 = numbers["programmes"][0]
    cells = [c.text for c in annex.rows[1].cells]
    assert str(p01["tasks"]["total"]) in cells and str(p01["tasks"]["cancelled"]) in cells and "70,0" in cells


async def test_the_workbook_holds_exactly_the_numbers_of_the_json(deployment):
    import io

    import openpyxl

    from services.reports.spreadsheet import TABLES, pick, shown

    numbers = await get(deployment, cycle="2021-Q1", known_at="2021-04-05")
    response = await deployment.get("/v1/reports/standing-committee",
                                    params={"cycle": "2021-Q1", "known_at": "2021-04-05", "format": "xlsx"})
    assert response.status_code == 200 and 'filename="bao-cao-2021-Q1.xlsx"' in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Tổng hợp", "Chương trình", "Nhiệm vụ quá hạn", "Đơn vị", "Chỉ tiêu"]
    for title, key, columns in TABLES:
        rows = [[c.value for c in row] for row in book[title].iter_rows(min_row=2)]
        assert rows == [[shown(pick(item, path)) for _, path, _ in columns] for item in numbers[key]], title
    programmes = {row[0].value: [c.value for c in row] for row in book["Chương trình"].iter_rows(min_row=2)}
    assert programmes["02"][-2:] == [1, 35.0]  # overdue, progress: as worked out by hand above
    assert [[c.value for c in row][:2] for row in book["Nhiệm vụ quá hạn"].iter_rows(min_row=2)] == [
        ["B1", numbers["overdue_tasks"][0]["title"]]]
