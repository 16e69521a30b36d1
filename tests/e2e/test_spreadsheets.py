"""Units that work in Excel, through the four services: download a template over HTTP, fill
it in, upload it (`nqt import` and POST /v1/imports), and see the rows applied and the live
status change; the same file again is a duplicate row by row; a bad cell is named; a
template saved again by LibreOffice Calc still imports."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from datetime import date

import httpx
import openpyxl
import pytest

from tests import kafkatools

REGISTRY = "deploy/registry/hanoi-xvii.yaml"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def auth(deployment, unit: str) -> dict:
    return {"Authorization": f"Bearer {deployment.keys[unit]}"}


def saved(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def template(ingest: httpx.AsyncClient, headers: dict, kind: str, ready=lambda book: True) -> openpyxl.Workbook:
    """The template as the unit downloads it, once it shows what `ready` waits for."""
    async def download():
        response = await ingest.get(f"/v1/templates/{kind}.xlsx", headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == XLSX, response.text
        return openpyxl.load_workbook(io.BytesIO(response.content))
    return await kafkatools.eventually(download, ready, timeout=60)


async def outcomes(ingest: httpx.AsyncClient, headers: dict, import_id: str) -> dict:
    async def read():
        return (await ingest.get(f"/v1/imports/{import_id}", headers=headers)).json()
    return await kafkatools.eventually(
        read, lambda r: all(row["outcome"]["status"] in ("applied", "duplicate", "rejected") for row in r["rows"]),
        timeout=60)


@pytest.fixture(scope="module")
def registry(deployment):
    loaded = deployment.nqt("registry", "load", REGISTRY)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr


async def test_a_plan_and_its_progress_through_templates_change_the_status(deployment, registry, tmp_path):
    khdt = auth(deployment, "SO-KHDT")
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=60) as ingest, \
            httpx.AsyncClient(base_url=deployment.url("reports"), timeout=30) as reports:
        plan = await template(ingest, khdt, "plan")
        plan["Kế hoạch"].append(["KH-02-XLSX", "02", "Kế hoạch thực hiện Chương trình 02", "12/KH-SKHDT",
                                 date(2021, 1, 5)])
        for n, due in ((1, date(2021, 3, 31)), (2, date(2021, 12, 31))):
            plan["Nhiệm vụ"].append(["KH-02-XLSX", f"XLSX-02-{n}", f"Nhiệm vụ {n}", "SO-KHDT", "Nguyễn Văn An",
                                     "Giám đốc Sở", None, due])
            plan["Lộ trình"].append([f"XLSX-02-{n}", "Hoàn thành, báo cáo", due])
        path = tmp_path / "ke-hoach.xlsx"
        path.write_bytes(saved(plan))
        imported = deployment.nqt("import", str(path), "--unit", "SO-KHDT", "--key", deployment.keys["SO-KHDT"],
                                  "--url", deployment.url("ingest"))
        assert imported.returncode == 0, imported.stdout + imported.stderr
        assert "outcomes: 1 applied" in imported.stdout
        await kafkatools.eventually(lambda: kafkatools.programme_status(reports, "02"),
                                    lambda p: p is not None and p["tasks"]["total"] == 2, timeout=60)

        # The progress template lists the unit's tasks as the programs service applied them.
        progress = await template(ingest, khdt, "progress", lambda book: book["Tiến độ"].max_row == 3)
        sheet = progress["Tiến độ"]
        assert [sheet["A2"].value, sheet["E2"].value] == ["XLSX-02-1", "Chưa triển khai"]
        for ref, value in {"G2": "Đang thực hiện", "H2": 40, "I2": date(2021, 3, 10), "K2": "Trần Thị Bình",
                           "L2": "Chuyên viên"}.items():
            sheet[ref] = value
        upload = {"file": ("tien-do.xlsx", saved(progress), XLSX)}
        first = await ingest.post("/v1/imports", files=upload, headers=khdt)
        assert first.status_code == 202, first.text
        rows = (await outcomes(ingest, khdt, first.json()["import"]))["rows"]
        assert [(r["sheet"], r["row"], r["outcome"]["status"]) for r in rows] == [("Tiến độ", 2, "applied")]
        p02 = await kafkatools.eventually(lambda: kafkatools.programme_status(reports, "02"),
                                          lambda p: p is not None and p["tasks"]["in_progress"] == 1)
        assert p02["progress_pct"] == 20.0

        again = await ingest.post("/v1/imports", files=upload, headers=khdt)
        assert again.status_code == 202 and again.json() == first.json()  # the same rows are the same events
        report = await kafkatools.eventually(
            lambda: outcomes(ingest, khdt, first.json()["import"]), lambda r: r["rows"][0]["outcome"]["duplicates"])
        assert report["rows"][0]["outcome"]["status"] == "applied"

        sheet["H2"] = 150
        bad = await ingest.post("/v1/imports", files={"file": ("tien-do.xlsx", saved(progress), XLSX)}, headers=khdt)
        not_a_workbook = await ingest.post("/v1/imports", files={"file": ("x.xlsx", b"a;b\n1;2\n", XLSX)},
                                           headers=khdt)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [(e["detail_vi"], e["detail"]) for e in bad.json()["errors"]] == [
        ("Tiến độ!H2: tiến độ phải từ 0 đến 100", "Tiến độ!H2: progress lies in 0..100")]
    assert not_a_workbook.status_code == 415 and "not an .xlsx" in not_a_workbook.json()["detail"]


async def test_a_unit_report_saved_again_by_libreoffice_still_imports(deployment, registry, tmp_path):
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("CI"):
            pytest.fail("soffice is missing on CI: `make setup` installs libreoffice-calc")
        pytest.skip("LibreOffice (soffice) is not installed here; `make setup` installs libreoffice-calc")
    tc = auth(deployment, "SO-TC")
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=60) as ingest:
        # The cycle opened by the reports service (its clock is at 2021-04-05) is written in.
        report = await template(ingest, tc, "unit-report", lambda book: book["Báo cáo"]["A2"].value == "2021-Q1")
        for ref, value in {"B2": "25/BC-STC", "C2": date(2021, 3, 16), "D2": "Đã triển khai theo kế hoạch."}.items():
            report["Báo cáo"][ref] = value
        (tmp_path / "filled").mkdir()
        (tmp_path / "filled" / "bao-cao.xlsx").write_bytes(saved(report))
        converted = subprocess.run(
            [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to", "xlsx",
             "--outdir", str(tmp_path / "calc"), str(tmp_path / "filled" / "bao-cao.xlsx")],
            capture_output=True, text=True, timeout=180)
        assert converted.returncode == 0, converted.stdout + converted.stderr
        body = (tmp_path / "calc" / "bao-cao.xlsx").read_bytes()
        assert body != saved(report)  # LibreOffice wrote the file anew
        answer = await ingest.post("/v1/imports", files={"file": ("bao-cao.xlsx", body, XLSX)}, headers=tc)
        assert answer.status_code == 202, answer.text
        rows = (await outcomes(ingest, tc, answer.json()["import"]))["rows"]
    assert [(r["row"], r["type"], r["outcome"]["status"]) for r in rows] == [(2, "unit-report.submitted", "applied")]
    async with httpx.AsyncClient(base_url=deployment.url("reports"), timeout=30) as reports:
        async def so_tc():
            return next(u for u in (await reports.get("/v1/status")).json()["units"] if u["code"] == "SO-TC")
        unit = await kafkatools.eventually(so_tc, lambda u: u["reports"]["on_time"] == 1)
    assert unit["report"]["document_no"] == "25/BC-STC"
