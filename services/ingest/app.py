"""Composition root of ingest: the HTTP API for departmental systems."""

from __future__ import annotations

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

from shared.kafka import make_broker
from shared.runtime import Runtime, create_app

from services.ingest import handlers, service
from services.ingest.problems import ProblemError, problem_response
from services.ingest.settings import IngestSettings
from services.ingest.store import INDEXES, IngestStore


def build(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = Runtime("ingest", settings, make_broker(settings, service="ingest"), INDEXES)
    handlers.register(runtime, settings.ingest_group)
    app = create_app(runtime, title="nq-tracker ingest")

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, err: ProblemError) -> JSONResponse:
        return problem_response(err, request.url.path)

    @app.post("/v1/events", status_code=202, summary="Publish one CloudEvent or a batch of up to 1,000")
    async def post_events(request: Request, authorization: str | None = Header(default=None)) -> dict:
        unit = service.unit_for_key(authorization, settings.ingest_dev_keys)
        length = int(request.headers.get("content-length") or 0)
        if length > settings.ingest_max_body_bytes:
            raise ProblemError(413, f"the body is {length} bytes; at most {settings.ingest_max_body_bytes}")
        body = await request.body()
        if len(body) > settings.ingest_max_body_bytes:
            raise ProblemError(413, f"the body is larger than {settings.ingest_max_body_bytes} bytes")
        events = service.validate(body, unit=unit, max_batch=settings.ingest_max_batch)
        ids = await service.publish(runtime.broker, settings.topics.accepted, events,
                                    store=IngestStore(runtime.db))
        return {"accepted": len(ids), "ids": ids}

    @app.get("/v1/events/{id:path}", summary="The status and outcome of one of the caller's own events")
    async def get_event(id: str, authorization: str | None = Header(default=None)) -> dict:
        unit = service.unit_for_key(authorization, settings.ingest_dev_keys)
        return await service.event_status(store=IngestStore(runtime.db), unit=unit, event_id=id)

    return app
