"""Composition root of ingest: the HTTP API for departmental systems."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pymongo.errors import ConnectionFailure
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException

from services.ingest import access, asyncapi, domain, handlers, openapi, problems, service, spreadsheets
from services.ingest.problems import ProblemError, problem_response
from services.ingest.settings import IngestSettings
from services.ingest.store import INDEXES, IngestStore
from shared import logs, mongo
from shared.kafka import make_broker
from shared.runtime import Runtime, create_app


log = structlog.get_logger("nqt.ingest")


class AnythingConvertor(PathConvertor):
    """Any event id, line breaks too: Starlette's `path` (`.*`) stops at a newline, and a path that
    matches no route is a 404 before the caller's key is checked."""
    regex = r"[\s\S]*"


register_url_convertor("anything", AnythingConvertor())


def build(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()
    runtime = Runtime("ingest", settings, make_broker(settings, service="ingest"), INDEXES)
    term, bounds, guard = service.Term(), domain.Bounds.of(settings), access.Guard(settings.ingest_rate_limit)
    handlers.register(runtime, settings.ingest_group, term=term, guard=guard)
    app = create_app(runtime, title="nq-tracker ingest")

    group: list[mongo.GroupInsert] = []  # created once the database is connected

    def store() -> IngestStore:
        if not group:
            group.append(mongo.GroupInsert(runtime.db.events))
        return IngestStore(runtime.db, accepted=group[0])
    openapi.install(app)
    described: list[dict] = []  # the AsyncAPI document, made once

    @app.exception_handler(ProblemError)
    async def on_problem(request: Request, err: ProblemError) -> JSONResponse:
        return problem_response(err, request.url.path)

    @app.exception_handler(domain.Refusal)
    async def on_refusal(request: Request, err: domain.Refusal) -> JSONResponse:
        return problem_response(problems.from_refusal(err), request.url.path)

    @app.exception_handler(ConnectionFailure)  # the database unreachable, or a failover under way
    async def on_database_down(request: Request, err: ConnectionFailure) -> JSONResponse:
        log.warning("database unavailable", error=str(err))
        problem = ProblemError(503, "the database did not answer; it is safe to send the same request again",
                               headers={"Retry-After": "2"})
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)  # a bug: still a problem document (Starlette logs it after)
    async def on_error(request: Request, err: Exception) -> JSONResponse:
        return problem_response(ProblemError(500, f"unexpected {type(err).__name__}"), request.url.path)

    @app.exception_handler(HTTPException)  # unknown paths, wrong methods: problem documents too
    async def on_http_error(request: Request, err: HTTPException) -> JSONResponse:
        title = ("Không có địa chỉ này", "No such resource") if err.status_code == 404 else None
        problem = ProblemError(err.status_code, str(err.detail), headers=dict(err.headers or {}), title=title)
        return problem_response(problem, request.url.path)

    async def caller(request: Request) -> access.Caller:
        """Authenticate the request's key, then count it against its unit's rate."""
        who = await access.authenticate(store=store(), dev_keys=settings.ingest_dev_keys,
                                        dev_secrets=settings.ingest_dev_signing_secrets,
                                        authorization=request.headers.get("authorization"),
                                        now=datetime.now(timezone.utc))
        guard.admit(who.unit)
        return who

    @app.post("/v1/events", status_code=202, response_model=None, responses=openapi.POST_RESPONSES,
              openapi_extra=openapi.post_events_extra(settings.ingest_max_batch),
              summary="Publish one CloudEvent or a batch of up to 1,000")
    async def post_events(request: Request) -> dict:
        who = await caller(request)
        with logs.about_event(event_id=None, unit=who.unit):
            body = await read_body(request, settings.ingest_max_body_bytes)
            ids = await service.submit(broker=runtime.broker, topic=settings.topics.accepted,
                                       store=store(), guard=guard, term=term, caller=who, body=body,
                                       headers=request.headers, bounds=bounds,
                                       timeout_s=settings.ingest_publish_timeout_s)
            log.info("events accepted", count=len(ids), event_ids=ids[:20])
        return {"accepted": len(ids), "ids": ids}

    @app.get("/v1/events/{id:anything}", response_model=None, responses=openapi.GET_RESPONSES,
             openapi_extra=openapi.GET_EVENT_EXTRA, summary="The status and outcome of one of the caller's own events")
    async def get_event(request: Request) -> dict:
        who = await caller(request)
        event_id = request.path_params["id"]  # read here, not validated by FastAPI: any string is an id
        return await service.event_status(store=store(), unit=who.unit, event_id=event_id)

    @app.get("/v1/templates/{kind}.xlsx", response_model=None, responses=openapi.TEMPLATE_RESPONSES,
             openapi_extra={"security": openapi.SECURITY},
             summary="An Excel template (plan, progress, indicators, unit-report), pre-filled for the caller's unit")
    async def get_template(request: Request, kind: str) -> Response:
        who = await caller(request)
        body = await spreadsheets.template(store=store(), unit=who.unit, kind=kind,
                                           today=datetime.now(ZoneInfo(settings.timezone)).date())
        return Response(body, media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{who.unit}-{kind}.xlsx"'})

    @app.post("/v1/imports", status_code=202, response_model=None, responses=openapi.IMPORT_RESPONSES,
              openapi_extra=openapi.IMPORT_EXTRA, summary="Upload a filled-in template: every row becomes an event")
    async def post_import(request: Request) -> dict:
        who = await caller(request)
        with logs.about_event(event_id=None, unit=who.unit):
            body = await read_body(request, settings.ingest_max_upload_bytes)
            answer = await spreadsheets.submit_import(
                broker=runtime.broker, topic=settings.topics.accepted, store=store(), guard=guard, term=term,
                caller=who, body=body, headers=request.headers, bounds=bounds,
                max_rows=settings.ingest_max_upload_rows, timeout_s=settings.ingest_publish_timeout_s)
            log.info("import accepted", import_id=answer["import"], count=answer["accepted"])
        return answer

    @app.get("/v1/imports/{id}", response_model=None, responses=openapi.IMPORT_STATUS_RESPONSES,
             openapi_extra={"security": openapi.SECURITY}, summary="Each row of one of the caller's imports and its outcome")
    async def get_import(request: Request, id: str) -> dict:
        who = await caller(request)
        return await spreadsheets.import_status(store=store(), unit=who.unit, import_id=id)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_document() -> dict:
        """Kafka intake (inbound.events), as /openapi.json is the HTTP API."""
        if not described:
            described.append(asyncapi.document(runtime.broker, settings.topics.inbound, title=app.title,
                                               version=app.version))
        return described[0]

    @app.get("/v1/whoami", response_model=None, responses=openapi.WHOAMI_RESPONSES,
             openapi_extra={"security": openapi.SECURITY},
             summary="The unit (and issued key) a bearer key authenticates as")
    async def whoami(request: Request) -> dict:
        # Other services authenticate a unit's key here instead of reading ingest's database.
        who = await caller(request)
        return {"unit": who.unit, "key_id": who.key_id}

    return app


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body (signatures cover it as sent); 413 as soon as it grows past `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise ProblemError(400, f"Content-Length {declared!r} is not a number")
    if declared is not None and int(declared) > limit:
        raise ProblemError(413, f"the body is {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
