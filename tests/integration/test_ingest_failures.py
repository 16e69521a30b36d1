"""When ingest itself fails, a departmental system still gets a problem document that
says what to do: the database unreachable is a 503 with Retry-After (safe to send the
same again), a failure of ingest's own a 500; never a bare text/plain error."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
from pymongo import AsyncMongoClient

from deploy.local import infra
from tests import samples

from services.ingest import service
from services.ingest.app import build
from services.ingest.settings import IngestSettings

AUTH = {"Authorization": "Bearer key-khdt"}


@asynccontextmanager
async def serving(app):
    """The app with its lifespan; server errors come back as the responses a client gets."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield client


async def test_server_errors_are_problem_documents(isolated, monkeypatch):
    settings = isolated.settings(IngestSettings, ingest_dev_keys={"key-khdt": "SO-KHDT"})
    app = build(settings)
    event = samples.task_update("SO-KHDT", "DOWN-1", "T-1", "02", "in_progress", 10)
    async with serving(app) as client:
        runtime = app.state.runtime
        healthy_db = runtime.db
        nowhere = AsyncMongoClient(f"mongodb://127.0.0.1:{infra.free_port()}", serverSelectionTimeoutMS=300)
        runtime.db = nowhere[settings.database("ingest")]  # the database becomes unreachable
        try:
            status_down = await client.get("/v1/events/DOWN-1", headers=AUTH)
            issued_key_down = await client.post("/v1/events", json=event,
                                                headers={"Authorization": "Bearer nqt_0123456789abcdef_secret"})
        finally:
            runtime.db = healthy_db
            await nowhere.close()

        async def broken(**_):
            raise KeyError("status")
        monkeypatch.setattr(service, "event_status", broken)
        bug = await client.get("/v1/events/DOWN-1", headers=AUTH)

    for down in (status_down, issued_key_down):
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert int(down.headers["Retry-After"]) >= 1 and down.json()["title_vi"]
    assert bug.status_code == 500 and bug.headers["content-type"] == "application/problem+json"
    assert bug.json()["status"] == 500 and bug.json()["instance"] == "/v1/events/DOWN-1"
