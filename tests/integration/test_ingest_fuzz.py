"""Schemathesis drives ingest from its own /openapi.json: well over 1,000 generated
requests, valid and invalid, against the in-process app (ASGI) with the real Kafka
and FerretDB behind it. No answer may be a server error, and every answer must be
one the description promises: status, media type, headers and body schema."""

from __future__ import annotations

import time
from collections import Counter

import pytest
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

from services.ingest.app import build
from services.ingest.domain import SIGNATURE_HEADERS
from services.ingest.settings import IngestSettings

# Schemathesis' own strategies use `random` inside; that is theirs to change, not a finding here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

UNIT, KEY = "SO-KHDT", "fuzz-key-so-khdt"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Requests per (operation, generation mode); positive cases are valid per the schema.
EVENTS, EVENT, WHOAMI = ("POST", "/v1/events"), ("GET", "/v1/events/{id}"), ("GET", "/v1/whoami")
PLAN = {(EVENTS, GenerationMode.POSITIVE): 450, (EVENTS, GenerationMode.NEGATIVE): 250,
        (EVENT, GenerationMode.POSITIVE): 200, (EVENT, GenerationMode.NEGATIVE): 150,
        (WHOAMI, GenerationMode.POSITIVE): 20, (WHOAMI, GenerationMode.NEGATIVE): 20}


def as_own_unit(body):
    """A generated event is sent as the key's unit, so valid ones get through to Kafka (a
    random `source` would only ever meet 403, which test_ingest_security covers)."""
    if isinstance(body, dict) and "source" in body:
        return body | {"source": UNIT}
    if isinstance(body, list):
        return [as_own_unit(item) for item in body]
    return body


def fuzz(operation, mode: GenerationMode, examples: int, statuses: Counter) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        if mode is GenerationMode.POSITIVE and case.body is not None:
            case.body = as_own_unit(case.body)
            for name in SIGNATURE_HEADERS:  # random ones never verify: 401 (negative cases still send them)
                (case.headers or {}).pop(name, None)
        response = case.call(headers={"Authorization": f"Bearer {KEY}"})
        statuses[(operation.method.upper(), operation.path, response.status_code)] += 1
        negative = [negative_data_rejection] if mode is GenerationMode.NEGATIVE else []  # must be a 4xx
        case.validate_response(response, checks=CHECKS + negative)

    run()


def test_generated_requests_get_only_documented_answers(isolated):
    app = build(isolated.settings(IngestSettings, ingest_dev_keys={KEY: UNIT}, ingest_rate_limit="1000000/minute"))
    started = time.monotonic()
    statuses: Counter = Counter()
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
        operations = {(op.method.upper(), op.path): op for op in (r.ok() for r in schema.get_all_operations())}
        assert set(operations) == {EVENTS, EVENT, WHOAMI}
        for (operation, mode), examples in PLAN.items():
            fuzz(operations[operation], mode, examples, statuses)
    finally:
        asgi.shutdown_lifespans()
    total = sum(statuses.values())
    print(f"\n{total} generated requests in {time.monotonic() - started:.1f} s: {dict(sorted(statuses.items()))}")
    assert total >= 1000
    assert statuses[(*EVENTS, 202)] > 0 and statuses[(*EVENTS, 422)] > 0 and statuses[(*EVENT, 404)] > 0
    assert statuses[(*WHOAMI, 200)] > 0
