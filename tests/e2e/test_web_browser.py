"""The web view in a real browser (Debian's chromium driven by Playwright) against the four
services as processes: each role signs in, the overview shows what GET /v1/status says, a
programme leads to a task's history, a unit cannot open another unit's page, and the Office's
approver signs the quarter's draft off, which issues it numbered.

Screenshots of the overview and of a task's history go to NQT_SCREENSHOT_DIR (out/screenshots;
the README's are in docs/)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from tests import kafkatools, samples

REGISTRY = "deploy/registry/hanoi-xvii.yaml"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("NQT_SCREENSHOT_DIR", ROOT / "out" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root, in a network that reaches nothing but this machine (see the machine notes): no sandbox,
# and none of the browser's own calls home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
NEW_PASSWORD = "mat-khau-rieng-2021"


@pytest.fixture(scope="module")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: `make setup` installs Debian's chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
async def seeded(deployment):
    """The registry, one plan of SO-KHDT (one task overdue) with reports, and a user of each role."""
    loaded = deployment.nqt("registry", "load", REGISTRY)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    plan = samples.plan("SO-KHDT", "SO-KHDT-W-1", "KH-02-W", "02", [
        samples.task("SO-KHDT-02-101", lead_unit="SO-KHDT", due="2021-06-30", milestones=2),
        samples.task("SO-KHDT-02-102", lead_unit="SO-KHDT", due="2021-03-31")])
    updates = [samples.task_update("SO-KHDT", "SO-KHDT-W-2", "SO-KHDT-02-101", "02", "in_progress", 30,
                                   time="2021-03-10T08:30:00+07:00"),
               samples.task_update("SO-KHDT", "SO-KHDT-W-3", "SO-KHDT-02-101", "02", "in_progress", 55)]
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=30) as ingest:
        for event in (plan, *updates):
            answer = await ingest.post("/v1/events", json=event,
                                       headers={"Authorization": f"Bearer {deployment.keys['SO-KHDT']}"})
            assert answer.status_code == 202, answer.text
    async with httpx.AsyncClient(base_url=deployment.url("reports"), timeout=10) as reports:
        await kafkatools.eventually(
            lambda: kafkatools.programme_status(reports, "02"),
            lambda p: p is not None and p["tasks"]["in_progress"] == 1 and p["progress_pct"] == 27.5, timeout=60)
    passwords = {}
    for name, *options in (("lanhdao", "--role", "leader"), ("vanphong", "--role", "office", "--approver"),
                           ("so-tc", "--role", "unit", "--unit", "SO-TC")):
        added = deployment.nqt("users", "add", name, *options)
        assert added.returncode == 0, added.stdout + added.stderr
        passwords[name] = re.search(r"^password: (\S+)$", added.stdout, re.M)[1]
    return passwords


async def sign_in(browser, deployment, name: str, password: str):
    """A fresh browser context signed in as `name`, the one-time password changed."""
    context = await browser.new_context(base_url=deployment.url("reports"), viewport={"width": 1280, "height": 900},
                                        locale="vi-VN")
    page = await context.new_page()
    await page.goto("/ui/")
    await page.get_by_label("Tên đăng nhập").fill(name)
    await page.get_by_label("Mật khẩu").fill(password)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page.get_by_role("heading", name="Đổi mật khẩu")).to_be_visible()
    await page.get_by_label("Mật khẩu hiện tại").fill(password)
    await page.get_by_label("Mật khẩu mới", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Nhập lại mật khẩu mới").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Đổi mật khẩu").click()
    await page.wait_for_url(re.compile(r"/ui/(units/.*)?$"))
    return context, page


async def test_a_leader_sees_the_status_numbers_and_drills_from_a_programme_to_a_task_history(
        deployment, seeded, browser):
    status = httpx.get(f"{deployment.url('reports')}/v1/status", timeout=10).json()
    context, page = await sign_in(browser, deployment, "lanhdao", seeded["lanhdao"])
    try:
        await expect(page.get_by_role("heading", name="Tình hình thực hiện Chương trình hành động")).to_be_visible()
        totals = status["totals"]["tasks"]
        for key in ("total", "in_progress", "overdue"):
            assert await page.locator(f'[data-key="tasks.{key}"]').inner_text() == str(totals[key])
        row = page.locator('tr[data-programme="02"]')
        p02 = next(p for p in status["programmes"] if p["code"] == "02")
        assert (await row.locator("td").nth(6).inner_text()) == str(p02["tasks"]["total"])
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SHOTS / "web-overview.png", full_page=True)

        in_progress = row.locator('a[href="/ui/programmes/02?status=in_progress#tasks"]')
        assert await in_progress.inner_text() == str(p02["tasks"]["in_progress"])
        await in_progress.click()
        await expect(page).to_have_url(re.compile(r"/ui/programmes/02\?status=in_progress"))
        await page.get_by_role("link", name="SO-KHDT-02-101").click()
        await expect(page.get_by_role("heading", name="Nhiệm vụ SO-KHDT-02-101")).to_be_visible()
        history = page.locator("table.history tbody tr")
        await expect(history).to_have_count(2)
        assert "Trần Thị Bình, Chuyên viên" in await history.nth(1).inner_text()
        await expect(page.locator("table.roadmap tbody tr")).to_have_count(2)
        await page.screenshot(path=SHOTS / "web-task.png", full_page=True)
    finally:
        await context.close()


async def test_a_unit_sees_its_own_page_only_and_the_office_approves_the_draft_which_issues_it_numbered(deployment, seeded, browser):
    context, page = await sign_in(browser, deployment, "so-tc", seeded["so-tc"])
    try:
        await expect(page.get_by_role("heading", name=re.compile(r"\(SO-TC\)$"))).to_be_visible()
        answer = await page.goto("/ui/units/SO-KHDT")
        assert answer.status == 403
        await expect(page.locator("#error")).to_contain_text("chỉ xem được trang của đơn vị mình")
    finally:
        await context.close()
    context, page = await sign_in(browser, deployment, "vanphong", seeded["vanphong"])
    try:
        async def reports_page():  # the scheduler drafts 2021-Q1 once its due date has passed
            return await (await context.request.get("/ui/reports")).text()
        await kafkatools.eventually(reports_page, lambda html: 'data-cycle="2021-Q1"' in html, timeout=120)
        await page.get_by_role("link", name="Báo cáo", exact=True).click()
        await expect(page.get_by_role("heading", name="Báo cáo gửi Ban Thường vụ Thành ủy")).to_be_visible()
        row = page.locator('tr[data-cycle="2021-Q1"]')
        await expect(row).to_contain_text("Dự thảo")
        await row.get_by_role("link", name="2021-Q1").click()
        await page.get_by_role("button", name="Duyệt và ban hành").click()
        await expect(page.locator("p.message")).to_contain_text("Số 1-BC/VPTU", timeout=60_000)
        await expect(page.locator('[data-key="status"]')).to_have_text("Đã ban hành")
        pdf = await context.request.get("/v1/reports/archive/2021-Q1/pdf")
        assert pdf.ok, await pdf.text()
        issued = subprocess.run(["pdftotext", "-layout", "-", "-"], input=await pdf.body(), capture_output=True,
                                check=True).stdout.decode()
        assert "Số 1-BC/VPTU" in issued and "DỰ THẢO" not in issued
    finally:
        await context.close()
