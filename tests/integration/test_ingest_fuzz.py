"""Schemathesis drives ingest from its own /openapi.json: well over 1,000 generated
requests, valid and invalid, against the in-process app (ASGI) with the real Kafka
and FerretDB behind it. No answer may be a server error, and every answer must be
one the description promises: status, media type, headers and body schema. Besides a
development key, the requests come signed with an issued key that requires it, with a
revoked key (always 401) and from a unit over its rate (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timezone

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from standardwebhooks import Webhook

from shared import mongo
from services.ingest import access
from services.ingest.app import build
from services.ingest.domain import SIGNATURE_HEADERS
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore

UNIT, KEY = "SO-KHDT", "fuzz-key-so-khdt"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Requests per (operation, generation mode); positive cases are valid per the schema.
EVENTS, EVENT, WHOAMI = ("POST", "/v1/events"), ("GET", "/v1/events/{id}"), ("GET", "/v1/whoami")
TEMPLATE, IMPORTS, IMPORT = ("GET", "/v1/templates/{kind}.xlsx"), ("POST", "/v1/imports"), ("GET", "/v1/imports/{id}")
PLAN = {(EVENTS, GenerationMode.POSITIVE): 450, (EVENTS, GenerationMode.NEGATIVE): 250,
        (EVENT, GenerationMode.POSITIVE): 200, (EVENT, GenerationMode.NEGATIVE): 150,
        (WHOAMI, GenerationMode.POSITIVE): 20, (WHOAMI, GenerationMode.NEGATIVE): 20,
        (TEMPLATE, GenerationMode.POSITIVE): 20, (IMPORTS, GenerationMode.POSITIVE): 40,
        (IMPORTS, GenerationMode.NEGATIVE): 20, (IMPORT, GenerationMode.POSITIVE): 20}


LIMIT = 5  # requests per minute of the rate-limited unit


def publishable(body):
    """A generated event is sent as the key's unit and with a time inside the window, so valid
    ones get through to Kafka (a random `source` or `time` would only ever meet 403 or 422,
    which test_ingest_security and test_ingest_bounds cover)."""
    if isinstance(body, dict) and "source" in body:
        return body | {"source": UNIT} | ({"time": "2021-03-20T08:30:00+07:00"} if "time" in body else {})
    if isinstance(body, list):
        return [publishable(item) for item in body]
    return body


def signed(key: str, secret: str, body: bytes) -> dict:
    msg_id, now = uuid.uuid4().hex, datetime.now(timezone.utc)
    return {"Authorization": f"Bearer {key}", "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode("utf-8", "replace"))}


class Caller:
    """How generated requests are sent, and what each must get back beyond the description."""

    def __init__(self, name: str, key: str, *, secret: str | None = None, expect=None):
        self.name, self.key, self.secret, self.expect = name, key, secret, expect

    def call(self, case):
        if self.secret is None or case.body is None or case.operation.method.upper() != "POST":
            return case.call(headers={"Authorization": f"Bearer {self.key}"})
        # What is signed is exactly what is sent.
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body, default=str).encode()
        return case.call(headers=signed(self.key, self.secret, body), data=body)


def fuzz(operation, mode: GenerationMode, examples: int, statuses: Counter, caller: Caller) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        if mode is GenerationMode.POSITIVE and case.body is not None:
            case.body = publishable(case.body)
            for name in SIGNATURE_HEADERS:  # random ones never verify: 401 (negative cases still send them)
                (case.headers or {}).pop(name, None)
        response = caller.call(case)
        statuses[(caller.name, operation.method.upper(), operation.path, response.status_code)] += 1
        # A negative case must be refused with a 4xx. 413 is one (a batch over the door's bound of 1,000
        # events is refused before its schema is read, and the description documents it), but not one
        # the check counts among its rejections.
        negative = [negative_data_rejection] if mode is GenerationMode.NEGATIVE and response.status_code != 413 \
            else []
        case.validate_response(response, checks=CHECKS + negative)
        if caller.expect:
            caller.expect(mode, response)

    run()


def never_401_when_signed(mode: GenerationMode, response) -> None:
    if mode is GenerationMode.POSITIVE:
        assert response.status_code != 401, response.text


def always_401(mode: GenerationMode, response) -> None:
    assert response.status_code == 401 and "revoked" in response.json()["detail"], response.text


class OverTheRate:
    """After the unit's first LIMIT requests in a minute (whatever they ask), 429 with Retry-After."""

    def __init__(self):
        self.calls = 0

    def __call__(self, mode: GenerationMode, response) -> None:
        self.calls += 1
        if self.calls > LIMIT:
            [retry_after] = response.headers.get("retry-after", [None])  # lowercased names, lists of values
            assert response.status_code == 429 and int(retry_after) >= 1, response.text


async def issue_keys(settings: IngestSettings) -> tuple[tuple[str, str], str]:
    """A key that must sign (and its secret), and a revoked key, issued as `nqt keys` does."""
    client = mongo.connect(settings.mongo_url)
    try:
        store, now = IngestStore(client[settings.database("ingest")]), datetime.now(timezone.utc)
        _, signing_key, secret = await access.issue_key(store=store, unit=UNIT, expires_at=None,
                                                        require_signature=True, now=now)
        doc, revoked, _ = await access.issue_key(store=store, unit=UNIT, expires_at=None, require_signature=False,
                                                 now=now)
        await access.revoke_key(store=store, key_id=doc["key_id"], now=now)
        return (signing_key, secret), revoked
    finally:
        await client.close()


def operations_of(app) -> dict:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    return {(op.method.upper(), op.path): op for op in (r.ok() for r in schema.get_all_operations())}


def test_generated_requests_get_only_documented_answers(isolated):
    settings_ = isolated.settings(IngestSettings, ingest_dev_keys={KEY: UNIT}, ingest_rate_limit="1000000/minute",
                                  ingest_group=f"{isolated.prefix}-ingest")
    limited = isolated.settings(IngestSettings, ingest_dev_keys={KEY: UNIT}, ingest_rate_limit=f"{LIMIT}/minute",
                                ingest_group=f"{isolated.prefix}-limited")
    started = time.monotonic()
    statuses: Counter = Counter()
    try:
        operations = operations_of(build(settings_))
        assert set(operations) == {EVENTS, EVENT, WHOAMI, TEMPLATE, IMPORTS, IMPORT}
        (signing_key, secret), revoked = asyncio.run(issue_keys(settings_))
        dev = Caller("dev key", KEY)
        for (operation, mode), examples in PLAN.items():
            fuzz(operations[operation], mode, examples, statuses, dev)
        for mode, examples in ((GenerationMode.POSITIVE, 150), (GenerationMode.NEGATIVE, 50)):
            fuzz(operations[EVENTS], mode, examples, statuses,
                 Caller("signed", signing_key, secret=secret, expect=never_401_when_signed))
        for operation in (EVENTS, EVENT, WHOAMI, IMPORTS):
            fuzz(operations[operation], GenerationMode.POSITIVE, 40, statuses, Caller("revoked", revoked,
                                                                                    expect=always_401))
        over_the_rate, rate = operations_of(build(limited)), Caller("rate-limited", KEY, expect=OverTheRate())
        for operation in (EVENTS, EVENT, WHOAMI):  # well within a minute
            fuzz(over_the_rate[operation], GenerationMode.POSITIVE, 30, statuses, rate)
    finally:
        asgi.shutdown_lifespans()
    total = sum(statuses.values())
    print(f"\n{total} generated requests in {time.monotonic() - started:.1f} s: {dict(sorted(statuses.items()))}")
    assert total >= 1000
    assert not [k for k in statuses if k[3] >= 500]
    assert statuses[("dev key", *EVENTS, 202)] > 0 and statuses[("dev key", *EVENTS, 422)] > 0
    assert statuses[("dev key", *EVENT, 404)] > 0 and statuses[("dev key", *WHOAMI, 200)] > 0
    assert statuses[("dev key", *TEMPLATE, 404)] > 0 and statuses[("dev key", *IMPORTS, 415)] > 0
    assert statuses[("signed", *EVENTS, 202)] > 0
    assert {k[0] for k in statuses if k[3] == 401} >= {"revoked"} and {k[0] for k in statuses if k[3] == 429} == {
        "rate-limited"}
