"""Composition root of notify."""

from __future__ import annotations

from fastapi import FastAPI, Query

from shared.kafka import make_broker
from shared.runtime import Job, Runtime, create_app

from services.notify import handlers
from services.notify.channels import EmailChannel, WebhookChannel
from services.notify.service import Notifier
from services.notify.settings import NotifySettings
from services.notify.store import INDEXES, NotifyStore


def build(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = Runtime("notify", settings, make_broker(settings, service="notify"), INDEXES)
    clock = settings.clock()
    channels = {"email": EmailChannel(settings), "webhook": WebhookChannel(settings)}

    def notifier_for(rt: Runtime) -> Notifier:
        return Notifier(NotifyStore(rt.db), channels, settings)

    handlers.register(runtime, settings.notify_group, notifier_for, clock)
    jobs = (Job("the deadline scan", settings.notify_scan_seconds, lambda rt: notifier_for(rt).scan(clock.today())),
            Job("retrying deliveries", min(settings.notify_retry_seconds / 2, 5.0),
                lambda rt: notifier_for(rt).retry_due()))
    app = create_app(runtime, title="nq-tracker notify", jobs=jobs)
    app.state.clock = clock

    @app.get("/v1/notifications", summary="The delivery log, optionally for one unit")
    async def notifications(unit: str | None = None, limit: int = Query(200, ge=1, le=5000)) -> list[dict]:
        return await NotifyStore(runtime.db).deliveries(unit, limit)

    return app
