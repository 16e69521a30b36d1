"""Composition root of notify."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.kafka import make_broker
from shared.problems import Problem
from shared.runtime import Job, Runtime, create_app
from shared.whoami import Whoami

from services.notify import domain, handlers
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
    whoami = Whoami(settings.notify_ingest_url, cache_seconds=settings.notify_key_cache_seconds)
    bearer = HTTPBearer(auto_error=False, description="The unit's API key, as ingest issued it")

    async def authenticated(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        return await whoami.unit(credentials.credentials if credentials else None)

    @app.get("/v1/notifications", summary="The delivery log of the caller's unit (the Office: of any unit)")
    async def notifications(unit: str | None = None, limit: int = Query(200, ge=1, le=5000),
                            caller: str = Depends(authenticated)) -> list[dict]:
        try:
            recipients = domain.readable_recipients(caller=caller, unit=unit)
        except domain.NotYours as err:
            raise Problem(403, str(err)) from err
        return await NotifyStore(runtime.db).deliveries(recipients, limit)

    return app
