"""One plan's life through all four services, driven only through their public interfaces."""

from __future__ import annotations

import httpx

from tests import kafkatools, samples

REGISTRY = "deploy/registry/hanoi-xvii.yaml"


async def test_plan_duplicate_update_and_invalid_plan_through_the_four_services(deployment):
    loaded = deployment.nqt("registry", "load", REGISTRY)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "94 applied" in loaded.stdout
    again = deployment.nqt("registry", "load", REGISTRY)
    assert again.returncode == 0 and "94 duplicate" in again.stdout, again.stdout + again.stderr

    plan = samples.plan("SO-KHDT", "SO-KHDT-2021-000001", "KH-02-SOKHDT", "02", [
        samples.task("SO-KHDT-02-001", lead_unit="SO-KHDT", due="2021-06-30"),
        samples.task("SO-KHDT-02-002", lead_unit="SO-KHDT", due="2021-03-31"),
        samples.task("SO-KHDT-02-003", lead_unit="SO-TC", due="2021-12-31"),
    ])
    update = samples.task_update("SO-KHDT", "SO-KHDT-2021-000002", "SO-KHDT-02-001", "02", "in_progress", 40)
    invalid = samples.plan("SO-TC", "SO-TC-2021-000001", "KH-02-SOTC", "02", [
        samples.task("SO-TC-02-001", lead_unit="SO-TC", milestones=0),
    ])
    khdt = {"Authorization": f"Bearer {deployment.keys['SO-KHDT']}"}
    tc = {"Authorization": f"Bearer {deployment.keys['SO-TC']}"}
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=30) as ingest:
        responses = [await ingest.post("/v1/events", json=plan, headers=khdt),
                     await ingest.post("/v1/events", json=plan, headers=khdt),   # the same event again
                     await ingest.post("/v1/events", json=update, headers=khdt),
                     await ingest.post("/v1/events", json=invalid, headers=tc)]
    assert [r.status_code for r in responses] == [202, 202, 202, 202]

    async with httpx.AsyncClient(base_url=deployment.url("reports"), timeout=10) as reports:
        await kafkatools.eventually(
            lambda: kafkatools.programme_status(reports, "02"),
            lambda p: p is not None and p["plans"]["rejected"] == 1 and p["tasks"]["in_progress"] == 1, timeout=60)
        status = (await reports.get("/v1/status")).json()

    p02 = next(p for p in status["programmes"] if p["code"] == "02")
    assert status["as_of"] == "2021-04-05"
    assert p02["plans"] == {"expected": 0, "submitted": 1, "rejected": 1}  # the duplicate counted once
    assert p02["tasks"] == {"total": 3, "not_started": 2, "in_progress": 1, "completed": 0, "blocked": 0,
                            "cancelled": 0, "overdue": 1}
    assert p02["progress_pct"] == round(40 / 3, 1)
    assert p02["title"].startswith("Đẩy mạnh đổi mới mô hình tăng trưởng")
    assert len(status["programmes"]) == 10

    async def rejection_mail():
        return [m for m in deployment.mailbox.snapshot() if "SO-TC-2021-000001" in m["Subject"]]

    mail = await kafkatools.eventually(rejection_mail)
    assert len(mail) == 1
    assert mail[0]["To"] == "so-tc@hanoi.example"
    body = mail[0].get_content()
    assert "invalid_plan" in body and "/data/tasks/0/milestones" in body and "lộ trình" in body

    async with httpx.AsyncClient(base_url=deployment.url("notify"), timeout=10) as notify:
        response = await notify.get("/v1/notifications", headers=tc)   # its own key: its own notices
    assert response.status_code == 200, response.text                 # notify asked ingest whose key it is
    log = response.json()
    assert [(d["kind"], d["status"]) for d in log if d["kind"] == "rejected"] == [("rejected", "sent")]

    async with httpx.AsyncClient(base_url=deployment.url("reports"), timeout=60) as reports:
        pdf = await reports.get("/v1/reports/standing-committee", params={"cycle": "2021-Q1", "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    for service in ("ingest", "programs", "reports", "notify"):
        async with httpx.AsyncClient(base_url=deployment.url(service), timeout=10) as client:
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200 and "nqt_" in metrics.text
            assert (await client.get("/healthz")).status_code == 200

