"""Composition root of the reports service."""

from __future__ import annotations

from fastapi import FastAPI

from shared.clock import Clock
from shared.kafka import make_broker
from shared.runtime import Runtime, create_app

from services.reports import handlers, service
from services.reports.settings import ReportsSettings
from services.reports.store import INDEXES, ReportsStore


def build(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or ReportsSettings()
    runtime = Runtime("reports", settings, make_broker(settings, service="reports"), INDEXES)
    clock = Clock(settings.timezone, settings.clock_fixed)
    handlers.register(runtime, settings.reports_group)
    app = create_app(runtime, title="nq-tracker reports")

    @app.get("/v1/status", summary="The live roll-up of every programme, indicator and unit")
    async def status() -> dict:
        return await service.live_status(store=ReportsStore(runtime.db), clock=clock)

    return app
