"""With MongoDB out of reach, the HTTP APIs say so with a 503 problem document and a
Retry-After, not a bare 500: real FerretDB behind a proxy that is then taken away."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from urllib.parse import urlsplit

from deploy.local import infra
from shared.kafka import make_broker
from shared.runtime import Job, Runtime, create_app
from shared.settings import CommonSettings
from tests.faults.proxy import Proxy
from tests.integration.conftest import running
from tests.receivers import KeyServer

from services.notify.app import build as build_notify
from services.notify.settings import NotifySettings
from services.reports.app import build as build_reports
from services.reports.settings import ReportsSettings


@contextmanager
def database_link(isolated):
    """A MongoDB URL through a proxy of our own, and a function that takes the proxy away."""
    proxy = Proxy(urlsplit(isolated.mongo).port, infra.free_port(), "mongo").start()
    taken_away = []

    def take_away() -> None:
        proxy.stop()
        taken_away.append(True)
    try:
        yield f"mongodb://127.0.0.1:{proxy.port}", take_away
    finally:
        if not taken_away:
            proxy.stop()


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503 and int(response.headers["retry-after"]) > 0


async def test_reports_answers_503_while_the_database_is_unreachable(isolated):
    """A report reads the database: 503. The live status is kept in memory by the replica that
    holds every partition: it stays up, showing what was applied before the outage."""
    with database_link(isolated) as (url, cut):
        settings = isolated.settings(ReportsSettings, mongo_url=url, reports_scheduler=False)
        async with running(build_reports(settings)) as client:
            before = await client.get("/v1/status")
            assert before.status_code == 200
            cut()
            report = await client.get("/v1/reports/standing-committee", params={"cycle": "2021-Q1"})
            status = await client.get("/v1/status")
    assert_unavailable(report)
    assert status.status_code == 200 and status.json()["totals"] == before.json()["totals"], status.text


async def test_notify_answers_503_while_the_database_is_unreachable(isolated):
    with database_link(isolated) as (url, cut), KeyServer({"office-key": "VPTU"}) as keys:
        settings = isolated.settings(NotifySettings, mongo_url=url, notify_ingest_url=keys.url)
        office = {"Authorization": "Bearer office-key"}
        async with running(build_notify(settings)) as client:
            assert (await client.get("/v1/notifications", headers=office)).status_code == 200
            cut()
            log = await client.get("/v1/notifications", headers=office)
    assert_unavailable(log)


async def test_a_service_stops_even_while_a_job_does_not_take_its_cancellation(isolated):
    """As a job inside PyMongo's server selection does while MongoDB is unreachable."""
    released = asyncio.Event()

    async def stubborn(runtime) -> None:
        while True:
            try:
                await released.wait()
            except asyncio.CancelledError:
                continue
            raise asyncio.CancelledError  # once the test is done with it

    settings = isolated.settings(CommonSettings)
    runtime = Runtime("reports", settings, make_broker(settings, service="reports"))
    app = create_app(runtime, title="test", jobs=(Job("a stubborn job", 0.1, stubborn),))

    async def start_and_stop() -> int:
        async with running(app) as client:
            await asyncio.sleep(0.3)  # the job is under way
            return (await client.get("/healthz")).status_code
    service = asyncio.create_task(start_and_stop())
    try:
        await asyncio.wait({service}, timeout=60)   # a bound for the test alone: it stops in about 5 s
        assert service.done() and service.result() == 200
    finally:
        released.set()
        await service


async def test_a_job_run_under_way_at_shutdown_is_let_finish_not_cancelled(isolated):
    """Cancelled inside PyMongo's server selection during an outage, a run can leave the
    client stuck; so shutdown lets it end by itself."""
    started, finished = asyncio.Event(), asyncio.Event()

    async def run(runtime) -> None:
        started.set()
        await asyncio.sleep(0.5)  # as a query waiting for an unreachable server does, for longer
        finished.set()

    settings = isolated.settings(CommonSettings)
    runtime = Runtime("reports", settings, make_broker(settings, service="reports"))
    async with running(create_app(runtime, title="test", jobs=(Job("a slow job", 3600, run),))):
        await started.wait()
    assert finished.is_set()
