"""What every service process has in common: settings, a Kafka broker, its own
MongoDB database, and /healthz, /readyz and /metrics on an HTTP port."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import uvicorn
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from starlette.exceptions import HTTPException

from shared import consumer, heap, kafka, lag, lanes, logs, metrics, mongo, problems
from shared.settings import CommonSettings

log = logging.getLogger("nqt.runtime")
# What a request may meet while MongoDB or Kafka is down or failing over: worth a retry later.
OUTAGES = (ConnectionFailure, ExecutionTimeout, KafkaConnectionError, KafkaTimeoutError)
# How long shutdown lets a job's run finish: past the MongoDB client's 10 s server selection,
# so that a run that meets an outage ends by itself.
JOB_STOP_S = 15.0


@dataclass
class Runtime:
    service: str
    settings: CommonSettings
    broker: KafkaBroker
    indexes: mongo.IndexSpec = field(default_factory=dict)
    client: AsyncMongoClient | None = None
    db: AsyncDatabase | None = None
    ready: bool = False


@dataclass(frozen=True)
class Job:
    """A periodic task of a service (a scan, a scheduler): safe to run in every replica."""

    what: str
    seconds: float
    run: Callable[[Runtime], Awaitable[object]]


async def _every(runtime: Runtime, job: Job, stopping: asyncio.Event) -> None:
    """Run `job` every `job.seconds` until `stopping` is set; a run under way is let finish."""
    while not stopping.is_set():
        started, result = time.perf_counter(), "ok"
        try:
            with heap.phase(f"job: {job.what}"):
                await job.run(runtime)
        except Exception:  # the next run tries again; what a job claims is retaken once stale
            result = "error"
            log.exception("%s failed", job.what)
        metrics.JOB_SECONDS.labels(service=runtime.service, what=job.what).observe(time.perf_counter() - started)
        metrics.JOB_RUNS.labels(service=runtime.service, what=job.what, result=result).inc()
        try:
            await asyncio.wait_for(stopping.wait(), job.seconds)
        except TimeoutError:
            pass


async def _stop_jobs(stopping: asyncio.Event, tasks: list[asyncio.Task]) -> None:
    """Stop the periodic jobs, letting a run under way finish rather than cancelling it: with
    MongoDB unreachable, a run cancelled inside PyMongo's server selection (4.20) was seen to
    leave the client's tasks waiting on its topology lock for ever, and the shutdown with them.
    Only a run still going after JOB_STOP_S is cancelled, and then left behind."""
    stopping.set()
    _, running = await asyncio.wait(tasks, timeout=JOB_STOP_S)
    for task in running:
        task.cancel()
    if running:
        log.warning("%d periodic job(s) still running at shutdown; left behind", len(running))


class RequestMetrics:
    """Counts and times HTTP requests by route template (no ids in labels) and status. A plain
    ASGI middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request."""

    def __init__(self, app, *, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(service=self.service, route=route, status=str(status)).inc()
            metrics.HTTP_SECONDS.labels(service=self.service, route=route).observe(time.perf_counter() - started)


def create_app(runtime: Runtime, *, title: str, jobs: tuple[Job, ...] = ()) -> FastAPI:
    """The service's HTTP app; its lifespan connects MongoDB, creates indexes and
    topics, starts the broker's subscribers and the periodic jobs, one of which
    measures the lag of the service's consumer groups."""
    jobs = (*jobs, Job("measuring consumer lag", lag.INTERVAL_S, lambda rt: lag.measure(rt.broker, rt.service)))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings = runtime.settings
        heap.configure(settings.heap_profile_dir, service=runtime.service, trace_frames=settings.heap_trace_frames)
        runtime.client = mongo.connect(settings.mongo_url)
        runtime.db = runtime.client[settings.database(runtime.service)]
        consumer.dead_letters(runtime.broker).db = runtime.db  # remembers what it dead-lettered
        await mongo.ensure_indexes(runtime.db, runtime.indexes)
        await kafka.ensure_topics(settings)
        await runtime.broker.start()
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(_every(runtime, job, stopping)) for job in jobs]
        runtime.ready = True
        try:
            yield
        finally:
            runtime.ready = False
            await _stop_jobs(stopping, tasks)
            await runtime.broker.stop()
            await runtime.client.close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.runtime = runtime

    app.add_middleware(RequestMetrics, service=runtime.service)
    _answer_errors_with_problems(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok", "service": runtime.service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict:
        checks = {"started": runtime.ready}
        if runtime.ready:
            checks["mongodb"] = await mongo.ping(runtime.db)
            checks["kafka"] = await runtime.broker.ping(timeout=2.0)
        ok = all(checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ready" if ok else "not ready", "checks": checks}

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def _answer_errors_with_problems(app: FastAPI) -> None:
    """Every error answer is a problem document: raised Problems, FastAPI's own errors (unknown
    path, bad parameters), an outage of MongoDB or Kafka (503, retry later) and anything else
    (500, with no internals: those go to the log)."""

    @app.exception_handler(problems.Problem)
    async def on_problem(request: Request, problem: problems.Problem) -> JSONResponse:
        return problems.response(problem, request.url.path)

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, err: HTTPException) -> JSONResponse:
        problem = problems.Problem(err.status_code, str(err.detail), headers=dict(err.headers or {}))
        return problems.response(problem, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_bad_parameters(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{"in": e["loc"][0], "name": ".".join(str(part) for part in e["loc"][1:]), "detail": e["msg"]}
                  for e in err.errors()]
        problem = problems.Problem(422, "some parameters of the request are not valid", extra={"errors": errors})
        return problems.response(problem, request.url.path)

    async def on_outage(request: Request, err: Exception) -> JSONResponse:
        log.warning("%s %s met an outage: %s: %s", request.method, request.url.path, type(err).__name__, err)
        problem = problems.unavailable("the service's database or message broker cannot be reached now")
        return problems.response(problem, request.url.path)

    for outage in OUTAGES:
        app.add_exception_handler(outage, on_outage)

    @app.exception_handler(Exception)  # Starlette logs the error with its traceback after this answer
    async def on_failure(request: Request, err: Exception) -> JSONResponse:
        problem = problems.Problem(500, "the request failed; the cause is in the service's log")
        return problems.response(problem, request.url.path)


def serve(app: FastAPI, *, host: str, port: int, log_level: str) -> None:
    """Run until SIGTERM/SIGINT; uvicorn then runs the lifespan's shutdown (broker stop, commit).
    The paths in `app.state.ready_paths` (path -> its made JSON, or None) are answered on an HTTP
    thread of their own, not behind the batches on the application's loop (shared/lanes.py)."""
    logs.configure(log_level, service=app.state.runtime.service)
    options = dict(host=host, port=port, log_level=log_level.lower(), access_log=False, timeout_graceful_shutdown=20,
                   log_config=None)
    ready = getattr(app.state, "ready_paths", None)
    if ready:
        lanes.serve(app, ready, service=app.state.runtime.service, **options)
    else:
        uvicorn.run(app, **options)
