"""Every error a service answers is an RFC 9457 problem document, with nothing of its internals."""

from __future__ import annotations

import httpx
from pymongo.errors import ServerSelectionTimeoutError

from shared.kafka import make_broker
from shared.runtime import Runtime, create_app
from shared.settings import CommonSettings


def app_raising(error: Exception):
    runtime = Runtime("reports", CommonSettings(env="test"), make_broker(CommonSettings(env="test"), service="reports"))
    app = create_app(runtime, title="test")

    @app.get("/v1/thing")
    async def thing(limit: int = 10) -> dict:
        raise error

    return app


async def get(app, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # as a server answers the client
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path)


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing():
    response = await get(app_raising(RuntimeError("password=hunter2 at mongodb-0")), "/v1/thing")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["instance"], body["title"]) == (500, "/v1/thing", "Internal error")
    assert body["title_vi"] and "hunter2" not in response.text and "RuntimeError" not in response.text


async def test_an_unreachable_database_is_a_503_problem_with_retry_after():
    response = await get(app_raising(ServerSelectionTimeoutError("mongodb-0:27017: timed out")), "/v1/thing")
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "mongodb-0" not in response.text


async def test_unknown_paths_and_bad_parameters_are_problems_too():
    app = app_raising(RuntimeError())
    missing, bad = await get(app, "/v1/nothing"), await get(app, "/v1/thing?limit=many")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [(e["in"], e["name"]) for e in bad.json()["errors"]] == [("query", "limit")]
