"""Composition root of notify."""

from __future__ import annotations

from fastapi import FastAPI

from shared.kafka import make_broker
from shared.runtime import Runtime, create_app

from services.notify import handlers
from services.notify.channels import EmailChannel
from services.notify.settings import NotifySettings
from services.notify.store import INDEXES, NotifyStore


def build(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = Runtime("notify", settings, make_broker(settings, service="notify"), INDEXES)
    handlers.register(runtime, settings.notify_group, EmailChannel(settings), settings.send_attempts)
    app = create_app(runtime, title="nq-tracker notify")

    @app.get("/v1/notifications", summary="The delivery log, optionally for one unit")
    async def notifications(unit: str | None = None) -> list[dict]:
        return await NotifyStore(runtime.db).deliveries(unit)

    return app
