"""Composition root of the reports service."""

from __future__ import annotations

import os
import secrets
import socket
import time
from datetime import timedelta
from typing import Literal

from fastapi import FastAPI, HTTPException, Query, Response

from shared.claims import Claims
from shared.kafka import make_broker
from shared.runtime import Job, Runtime, create_app

from services.reports import gauges, handlers
from services.reports.owned import Holdings
from services.reports.service import BadRequest, ReportsService, parse_known_at
from services.reports.settings import ReportsSettings
from services.reports.store import INDEXES, ReportsStore
from services.reports.web import pages


def build(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or ReportsSettings()
    runtime = Runtime("reports", settings, make_broker(settings, service="reports"), INDEXES)
    clock = settings.clock()

    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # this replica, in its claims
    stale_after = timedelta(seconds=settings.reports_claim_stale_seconds)

    holdings = Holdings(consumer=True)  # what this replica keeps of the programmes it owns

    def service_for(rt: Runtime) -> ReportsService:
        return ReportsService(ReportsStore(rt.db, holdings), clock, due_working_days=settings.reports_due_working_days,
                              claims=Claims(rt.db.claims, holder=holder, stale_after=stale_after),
                              auto_issue=settings.reports_auto_issue,
                              status_limit=settings.reports_status_list_limit)

    handlers.register(runtime, settings.reports_group, service_for, holdings)
    renderer = handlers.Renderer(settings.reports_max_renders, settings.reports_render_wait_s)
    schedule = Job("the reporting scheduler", settings.reports_schedule_seconds,
                   lambda rt: handlers.schedule_once(rt, service_for(rt), renderer))
    refresh = Job("the programme and report gauges", settings.reports_gauges_seconds,
                  lambda rt: gauges.refresh(service_for(rt)))

    async def live_status() -> dict:
        status = await service_for(runtime).live_status()
        gauges.record_status(status)
        return status

    # The status is made here, right after batches, so that a request only reads its bytes.
    remake = Job("the live status", settings.reports_status_refresh_s,
                 lambda rt: holdings.refresh_status(clock.today, live_status))
    jobs = (schedule, refresh, remake) if settings.reports_scheduler else (refresh, remake)
    app = create_app(runtime, title="nq-tracker reports", jobs=jobs)
    app.state.renderer = renderer
    app.state.holdings = holdings
    # Once made, the status is answered on the HTTP thread: a request does not wait behind a batch.
    app.state.ready_paths = {"/v1/status": lambda: holdings.made_status(clock.today())}

    # The Office's sign-off, for the views that offer it (they check who may sign; these trust them).
    async def approve(*, cycle_code: str, approver: str) -> dict:
        """Approve the cycle's draft: numbered, frozen and issued; the issued report (JSON)."""
        return await handlers.approve(runtime, service_for(runtime), renderer, cycle_code=cycle_code,
                                      approver=approver)

    async def send_back(*, cycle_code: str, approver: str, comment: str) -> None:
        """Send the cycle's draft back with a comment; the scheduler prepares a new one."""
        await handlers.send_back(service_for(runtime), cycle_code=cycle_code, approver=approver, comment=comment)

    app.state.approve, app.state.send_back = approve, send_back
    app.state.service = lambda: service_for(runtime)  # cycle_reports(), report(), ...

    @app.get("/v1/status", summary="The live roll-up of every programme, indicator and unit",
             response_class=Response, responses={200: {"content": {"application/json": {}}}})
    async def status() -> Response:
        return Response(await holdings.status_json(clock.today(), live_status), media_type="application/json")

    @app.get("/v1/status/tasks", summary="A page of the status's overdue tasks or tasks due next period")
    async def status_tasks(which: Literal["overdue", "due_next"] = Query("overdue", alias="list"),
                           offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=1000)) -> dict:
        return await service_for(runtime).status_tasks(which=which, offset=offset, limit=limit)

    @app.get("/v1/reports/standing-committee", summary="The report to the Standing Committee for a cycle",
             responses={200: {"content": {t: {} for t in handlers.FORMATS.values()}}})
    async def standing_committee(cycle: str, format: Literal["json", "html", "pdf", "docx", "xlsx"] = "json",
                                 known_at: str | None = None) -> Response:
        service, started = service_for(runtime), time.perf_counter()
        try:
            report = await service.report(cycle_code=cycle, known_at=parse_known_at(known_at, clock))
        except BadRequest as err:
            raise HTTPException(400, str(err)) from err
        body = await renderer.render(report, format)
        gauges.record_generated("request", format, started)
        return Response(body, media_type=handlers.FORMATS[format], headers=_download(cycle, format))

    @app.get("/v1/reports/archive/{cycle}/{format}", summary="A report as it was issued")
    async def archived(cycle: str, format: Literal["json", "html", "pdf", "docx"]) -> Response:
        issued = await ReportsStore(runtime.db).issued_report(cycle)
        if not issued or issued.get("status") != "issued":
            raise HTTPException(404, f"no report has been issued for cycle {cycle}")
        body = handlers.rendered(issued["report"], "json") if format == "json" else bytes(issued["files"][format])
        return Response(body, media_type=handlers.FORMATS[format], headers=_download(cycle, format))

    pages.mount(app, runtime, service_for, settings)  # the web view, /ui/
    return app


def _download(cycle: str, fmt: str) -> dict[str, str]:
    if fmt in ("pdf", "docx", "xlsx"):
        return {"Content-Disposition": f'attachment; filename="bao-cao-{cycle}.{fmt}"'}
    return {}
