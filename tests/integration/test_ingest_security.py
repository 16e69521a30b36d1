"""Ingest's doors against the real Kafka and FerretDB: issued API keys (revoked, expired,
another unit's), signed requests (bad, stale, replayed, missing), the limits (size,
batch, rate) and the `nqt keys` commands. A refused request publishes nothing: each
test reads `events.accepted` and finds only what was accepted, up to a later marker."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from standardwebhooks import Webhook

from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest import access, domain
from services.ingest.app import build
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def update(source: str, event_id: str, progress: float = 10) -> dict:
    return samples.task_update(source, event_id, f"{source}-T-1", "02", "in_progress", progress)


async def issue(app, unit: str, **options) -> tuple[str, dict, str | None]:
    """Issue a key straight through the service (the CLI has its own test below)."""
    now = datetime.now(timezone.utc)
    doc, key, secret = await access.issue_key(store=IngestStore(app.state.runtime.db), unit=unit,
                                              expires_at=options.get("expires_at"),
                                              require_signature=options.get("require_signature", False), now=now)
    return key, doc, secret


async def good_revoked_expired(app, unit: str) -> tuple[tuple[str, dict], str, str]:
    """Three keys of `unit`: a good one (and its document), a revoked one, an expired one."""
    good, good_doc, _ = await issue(app, unit)
    revoked, revoked_doc, _ = await issue(app, unit)
    await access.revoke_key(store=IngestStore(app.state.runtime.db), key_id=revoked_doc["key_id"],
                            now=datetime.now(timezone.utc))
    expired, _, _ = await issue(app, unit, expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    return (good, good_doc), revoked, expired


def signed(secret: str, key: str, body: bytes, msg_id: str, *, at: datetime | None = None) -> dict:
    at = at or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return auth(key) | {"content-type": "application/json", "webhook-id": msg_id,
                        "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


async def accepted_ids(settings, marker: str) -> list[str]:
    records = await kafkatools.read_topic(settings.kafka_bootstrap, settings.topics.accepted,
                                          until=lambda rs: any(r["id"] == marker for r in rs))
    return [r["id"] for r in records]


async def test_only_a_good_key_of_the_events_own_unit_gets_in(isolated):
    settings = isolated.settings(IngestSettings)
    app = build(settings)
    async with running(app) as client:
        (good, _), revoked, expired = await good_revoked_expired(app, "SO-KHDT")
        forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")  # right key id, wrong secret
        post = lambda event_id, headers: client.post("/v1/events", json=update("SO-KHDT", event_id), headers=headers)
        answers = {"no key": await post("NO-KEY", {}),
                   "revoked": await post("REVOKED", auth(revoked)),
                   "expired": await post("EXPIRED", auth(expired)),
                   "forged": await post("FORGED", auth(forged)),
                   "unknown": await post("UNKNOWN", auth("nqt_0000000000000000_nothing")),
                   "other unit": await client.post("/v1/events", json=update("SO-TC", "FOREIGN"), headers=auth(good)),
                   "status, revoked": await client.get("/v1/events/MARK", headers=auth(revoked)),
                   # an id with a line break is still an id: the key is judged first, not a 404
                   "status of a two-line id, revoked": await client.get("/v1/events/A%0AB", headers=auth(revoked)),
                   "status of a two-line id": await client.get("/v1/events/A%0AB", headers=auth(good)),
                   "good": await post("MARK", auth(good))}
        published = await accepted_ids(settings, "MARK")

    assert {name: r.status_code for name, r in answers.items()} == {
        "no key": 401, "revoked": 401, "expired": 401, "forged": 401, "unknown": 401, "other unit": 403,
        "status, revoked": 401, "status of a two-line id, revoked": 401, "status of a two-line id": 404,
        "good": 202}
    assert all(r.headers["content-type"] == "application/problem+json" for r in list(answers.values())[:-1])
    assert "revoked" in answers["revoked"].json()["detail"] and "expired" in answers["expired"].json()["detail"]
    assert answers["forged"].json()["detail"] == "unknown API key"  # nothing told about a key one does not hold
    assert answers["other unit"].json()["errors"][0]["pointer"] == "/source"
    assert published == ["MARK"]


async def test_whoami_authenticates_a_key_exactly_as_publishing_does(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys={"dev-khdt": "SO-KHDT"},
                                 ingest_rate_limit="4/minute")
    app = build(settings)
    async with running(app) as client:
        (good, good_doc), revoked, expired = await good_revoked_expired(app, "SO-TC")
        whoami = lambda headers: client.get("/v1/whoami", headers=headers)
        answers = {"dev key": await whoami(auth("dev-khdt")), "issued key": await whoami(auth(good)),
                   "revoked": await whoami(auth(revoked)), "expired": await whoami(auth(expired)),
                   "no key": await whoami({}), "unknown": await whoami(auth("nqt_0000000000000000_nothing"))}
        # The rate is the unit's, whatever it asks: one POST and two more whoami fill SO-KHDT's 4/minute.
        posted = await client.post("/v1/events", json=update("SO-KHDT", "W-1"), headers=auth("dev-khdt"))
        within = [await whoami(auth("dev-khdt")) for _ in range(2)]
        limited = await whoami(auth("dev-khdt"))

    assert answers["dev key"].json() == {"unit": "SO-KHDT", "key_id": None}
    assert answers["issued key"].json() == {"unit": "SO-TC", "key_id": good_doc["key_id"]}
    for name in ("revoked", "expired", "no key", "unknown"):
        assert answers[name].status_code == 401, name
        assert answers[name].headers["content-type"] == "application/problem+json", name
    assert "revoked" in answers["revoked"].json()["detail"] and "expired" in answers["expired"].json()["detail"]
    assert posted.status_code == 202 and [r.status_code for r in within] == [200, 200]
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["content-type"] == "application/problem+json"


async def test_signed_requests_bad_stale_replayed_or_missing_are_refused(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys={"dev-khdt": "SO-KHDT"})
    app = build(settings)
    async with running(app) as client:
        key, _, secret = await issue(app, "SO-KHDT", require_signature=True)
        tc_key, _, tc_secret = await issue(app, "SO-TC", require_signature=True)
        other_secret = (await issue(app, "SO-KHDT", require_signature=True))[2]
        bodies = {name: orjson.dumps(update("SO-KHDT", name)) for name in
                  ("UNSIGNED", "BAD-SIG", "STALE", "FUTURE", "SIGNED", "DEV-SIGNED", "MARK")}

        async def send(name: str, headers: dict, body: bytes | None = None):
            return await client.post("/v1/events", content=body or bodies[name], headers=headers)

        stale = datetime.now(timezone.utc) - timedelta(minutes=6)
        future = datetime.now(timezone.utc) + timedelta(minutes=6)
        first = signed(secret, key, bodies["SIGNED"], "msg-1")
        answers = {
            "unsigned": await send("UNSIGNED", auth(key) | {"content-type": "application/json"}),
            "bad signature": await send("BAD-SIG", signed(other_secret, key, bodies["BAD-SIG"], "msg-bad")),
            "stale": await send("STALE", signed(secret, key, bodies["STALE"], "msg-stale", at=stale)),
            "future": await send("FUTURE", signed(secret, key, bodies["FUTURE"], "msg-future", at=future)),
            "garbage signature": await send("BAD-SIG", first | {"webhook-signature": "v1"}),
            "signed": await send("SIGNED", first),
            "replayed": await send("SIGNED", first),
            "dev key, signed": await send("DEV-SIGNED", first | auth("dev-khdt") | {"webhook-id": "msg-dev"}),
            # The same webhook-id from another unit is that unit's own.
            "other unit, same id": await client.post(
                "/v1/events", content=orjson.dumps(update("SO-TC", "TC-1")),
                headers=signed(tc_secret, tc_key, orjson.dumps(update("SO-TC", "TC-1")), "msg-1")),
            "marker": await send("MARK", signed(secret, key, bodies["MARK"], "msg-2")),
        }
        published = await accepted_ids(settings, "MARK")

    assert {name: r.status_code for name, r in answers.items()} == {
        "unsigned": 401, "bad signature": 401, "stale": 401, "future": 401, "garbage signature": 401,
        "signed": 202, "replayed": 401, "dev key, signed": 401, "other unit, same id": 202, "marker": 202}
    assert "requires signed requests" in answers["unsigned"].json()["detail"]
    assert "too old" in answers["stale"].json()["detail"] and "too new" in answers["future"].json()["detail"]
    assert "replayed" in answers["replayed"].json()["detail"]
    assert sorted(published) == ["MARK", "SIGNED", "TC-1"]  # once each: the replay published nothing


async def test_size_batch_rate_and_schema_limits(isolated):
    settings = isolated.settings(IngestSettings, ingest_dev_keys={"key-khdt": "SO-KHDT", "key-tc": "SO-TC",
                                                                  "key-xd": "SO-XD"},
                                 ingest_max_body_bytes=2048, ingest_max_batch=3, ingest_rate_limit="5/minute")
    big = update("SO-KHDT", "BIG")
    big["data"]["note"] = "Ghi chú " * 400

    async def chunks():
        body = orjson.dumps(big)
        for i in range(0, len(body), 500):
            yield body[i:i + 500]

    bad_batch = [update("SO-KHDT", "B-0"), update("SO-KHDT", "B-1", progress=150), update("SO-KHDT", "B-2")]
    async with running(build(settings)) as client:
        oversize = await client.post("/v1/events", json=big, headers=auth("key-khdt"))
        streamed = await client.post("/v1/events", content=chunks(), headers=auth("key-khdt"))  # no Content-Length
        too_many = await client.post("/v1/events", json=[update("SO-KHDT", f"N-{i}") for i in range(4)],
                                     headers=auth("key-khdt"))
        invalid = await client.post("/v1/events", json=bad_batch, headers=auth("key-khdt"))
        for _ in range(5):  # SO-XD uses up its rate; other units are not affected
            assert (await client.get("/v1/events/NONE", headers=auth("key-xd"))).status_code == 404
        limited = await client.post("/v1/events", json=update("SO-XD", "LIMITED"), headers=auth("key-xd"))
        marker = await client.post("/v1/events", json=update("SO-TC", "MARK"), headers=auth("key-tc"))
        published = await accepted_ids(settings, "MARK")

    assert "content-length" not in streamed.request.headers
    assert [oversize.status_code, streamed.status_code, too_many.status_code, invalid.status_code,
            limited.status_code, marker.status_code] == [413, 413, 413, 422, 429, 202]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["title"] == "Too many requests; retry later" and limited.json()["title_vi"]
    assert [(e["index"], e["pointer"]) for e in invalid.json()["errors"]] == [(1, "/1/data/progress")]
    assert published == ["MARK"]


async def nqt(isolated, *args: str) -> subprocess.CompletedProcess:
    """`nqt keys ...` as an operator runs it, in its own process (the service keeps running)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NQT_")}
    env |= {"NQT_MONGO_URL": isolated.mongo, "NQT_DB_PREFIX": isolated.prefix, "NQT_ENV": "test"}
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "nqt.cli", "keys", *args], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=60)


async def test_nqt_keys_issue_list_revoke(isolated):
    settings = isolated.settings(IngestSettings)
    app = build(settings)
    async with running(app) as client:
        issued = await nqt(isolated, "issue", "SO-KHDT", "--expires", "2099-12-31", "--require-signature")
        assert issued.returncode == 0, issued.stderr
        key = re.search(r"API key:\s+(nqt_\S+)", issued.stdout).group(1)
        secret = re.search(r"signing secret.*?:\s+(whsec_\S+)", issued.stdout).group(1)
        key_id = re.search(r"key id:\s+(\S+)", issued.stdout).group(1)
        listed, other_unit, bad_unit, past, missing = await asyncio.gather(  # independent: side by side
            nqt(isolated, "list"), nqt(isolated, "list", "SO-TC"), nqt(isolated, "issue", "so khdt"),
            nqt(isolated, "issue", "SO-KHDT", "--expires", "2020-01-01"), nqt(isolated, "revoke", "0000000000000000"))
        body = orjson.dumps(update("SO-KHDT", "CLI-1"))
        accepted = await client.post("/v1/events", content=body, headers=signed(secret, key, body, "cli-1"))
        revoked = await nqt(isolated, "revoke", key_id)
        refused = await client.get("/v1/events/CLI-1", headers=auth(key))
        after = await nqt(isolated, "list", "SO-KHDT")
        stored = await app.state.runtime.db.keys.find_one({"_id": key_id})

    assert issued.stdout.count(key) == 1 and issued.stdout.count(secret) == 1
    assert "2099-12-31T17:00:00Z" in issued.stdout  # the end of that day in Hanoi
    for out in (listed.stdout, after.stdout):
        assert key_id in out and key not in out and secret not in out and stored["hash"] not in out
    assert key_id not in other_unit.stdout
    assert accepted.status_code == 202 and refused.status_code == 401
    assert revoked.returncode == 0 and f"revoked {key_id} of SO-KHDT" in revoked.stdout
    assert re.search(rf"{key_id}\s+SO-KHDT\s+\S+\s+2099-12-31T17:00:00Z\s+\d{{4}}-\S+\s+yes", after.stdout)
    assert stored["unit"] == "SO-KHDT" and key not in str(stored) and stored["revoked_at"] is not None
    assert bad_unit.returncode == 2 and past.returncode == 2 and missing.returncode == 1


async def test_webhook_ids_are_kept_ten_minutes_then_pruned(isolated):
    app = build(isolated.settings(IngestSettings))
    async with running(app):
        store, now = IngestStore(app.state.runtime.db), datetime.now(timezone.utc)
        for webhook_id, age in (("old", 11), ("recent", 9)):
            await store.remember_webhook_id(unit="SO-KHDT", webhook_id=webhook_id, seen_at=now - timedelta(minutes=age))
        await access.unseen_webhook_id(store=store, guard=access.Guard("9/second"), unit="SO-KHDT",
                                       webhook_id="old", now=now)
        kept = sorted([d["_id"] async for d in app.state.runtime.db.webhook_ids.find({})])
        with pytest.raises(domain.Unauthenticated, match="replayed"):
            await access.unseen_webhook_id(store=store, guard=access.Guard("9/second"), unit="SO-KHDT",
                                           webhook_id="recent", now=now)
    assert kept == ["SO-KHDT:recent"]
