"""The OpenAPI description of ingest's HTTP API, as it behaves: a unit's API key as a
bearer token, the optional Standard Webhooks signature headers, the request body (one
CloudEvent or a batch, with the `data` of every inbound type, generated from
shared.events) and the RFC 9457 problem documents of every refusal."""

from __future__ import annotations

from typing import Annotated, Union

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import Field, TypeAdapter

from shared.events import EVENT_MODELS, EXTENSION_NAME, INBOUND_TYPES, INT32, MAX_EXTENSION_TEXT, MAX_EXTENSIONS

from services.ingest.problems import PROBLEM, TITLES

REF = "#/components/schemas/{model}"
SECURITY = [{"unitKey": []}]
UNIT_KEY = {"type": "http", "scheme": "bearer",
            "description": "The unit's API key (`nqt keys issue UNIT`). An event's `source` must be that unit."}

PROBLEM_SCHEMA = {
    "type": "object", "description": "RFC 9457 problem details, titled in English and Vietnamese.",
    "required": ["type", "title", "title_vi", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "title_vi": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "description": "each bad field, with a JSON pointer into the request body",
                   "items": {"type": "object", "required": ["pointer", "detail"],
                             "properties": {"index": {"type": "integer", "minimum": 0},
                                            "pointer": {"type": "string"}, "code": {"type": "string"},
                                            "detail": {"type": "string"}, "detail_vi": {"type": "string"}}}},
    },
}
ACCEPTED_SCHEMA = {"type": "object", "required": ["accepted", "ids"],
                   "properties": {"accepted": {"type": "integer", "minimum": 1},
                                  "ids": {"type": "array", "items": {"type": "string"}}}}
STATUS_SCHEMA = {
    "type": "object", "required": ["id", "source", "type", "status", "accepted_at", "duplicates"],
    "properties": {
        "id": {"type": "string"}, "source": {"type": "string"}, "type": {"type": ["string", "null"]},
        "status": {"enum": ["accepted", "applied", "duplicate", "rejected"]},
        "accepted_at": {"type": ["string", "null"]}, "decided_at": {"type": "string"},
        "code": {"type": "string"}, "message_vi": {"type": "string"}, "message_en": {"type": "string"},
        "findings": {"type": "array", "items": {"type": "object"}},
        "duplicates": {"type": "integer", "minimum": 0},
    },
}
WHOAMI_SCHEMA = {"type": "object", "required": ["unit", "key_id"],
                 "properties": {"unit": {"type": "string", "description": "the unit the key belongs to"},
                                "key_id": {"type": ["string", "null"],
                                           "description": "the issued key's id; null for a development key"}}}
SIGNATURE_PARAMETERS = [
    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("webhook-id", "Signed requests (Standard Webhooks): a unique id; a unit cannot use one twice."),
        ("webhook-timestamp", "Signed requests: Unix seconds, within 5 minutes of the server's clock."),
        ("webhook-signature", "Signed requests: `v1,<base64 HMAC-SHA256>` of `id.timestamp.raw body` with the "
                              "key's `whsec_` secret. Required when the key was issued with --require-signature."),
    )
]


EXTENSION_SCHEMA = {"type": ["string", "boolean", "integer", "null"], "maxLength": MAX_EXTENSION_TEXT,
                    "minimum": INT32[0], "maximum": INT32[1],
                    "description": f"a CloudEvents extension attribute: a scalar; at most {MAX_EXTENSIONS} of them"}


def _problem(status: int, *, headers: dict[str, dict] | None = None) -> dict:
    vi, en = TITLES[status]
    response = {"description": f"{en} ({vi})", "content": {PROBLEM: {"schema": {"$ref": REF.format(model="Problem")}}}}
    return response | ({"headers": headers} if headers else {})


RETRY_AFTER = {"Retry-After": {"required": True, "description": "seconds to wait before retrying",
                               "schema": {"type": "integer", "minimum": 1}}}
# Any request: a bad key, over its unit's rate; the database or Kafka unavailable; a failure of ingest's own.
EVERY_REQUEST = {401: _problem(401), 429: _problem(429, headers=RETRY_AFTER), 500: _problem(500),
                 503: _problem(503, headers=RETRY_AFTER)}

POST_RESPONSES = {
    202: {"description": "Kafka acknowledged every event (acks=all).",
          "content": {"application/json": {"schema": ACCEPTED_SCHEMA}}},
    400: _problem(400), **EVERY_REQUEST, 403: _problem(403), 413: _problem(413), 422: _problem(422),
}
GET_RESPONSES = {
    200: {"description": "The event's status and outcome.", "content": {"application/json": {"schema": STATUS_SCHEMA}}},
    **EVERY_REQUEST, 404: _problem(404),
}
WHOAMI_RESPONSES = {
    200: {"description": "The key is good: its unit, and its id when it is an issued key.",
          "content": {"application/json": {"schema": WHOAMI_SCHEMA}}},
    **EVERY_REQUEST,
}

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_RESPONSES = {
    200: {"description": "The template, pre-filled for the caller's unit.", "content": {XLSX: {}}},
    **EVERY_REQUEST, 404: _problem(404),
}
IMPORT_SCHEMA = {"type": "object", "required": ["import", "accepted", "ids"],
                 "properties": {"import": {"type": "string", "description": "GET /v1/imports/{id} tells each row"},
                                "accepted": {"type": "integer", "minimum": 1},
                                "ids": {"type": "array", "items": {"type": "string"}}}}
IMPORT_RESPONSES = {
    202: {"description": "Kafka acknowledged the event of every filled-in row (acks=all).",
          "content": {"application/json": {"schema": IMPORT_SCHEMA}}},
    400: _problem(400), **EVERY_REQUEST, 413: _problem(413), 415: _problem(415),
    422: _problem(422) | {"description": "Bad cells, each named by sheet and cell (`sheet`, `cell`, `detail`, "
                                         "`detail_vi`); or a workbook that cannot be read. Nothing was imported."},
}
IMPORT_STATUS_RESPONSES = {
    200: {"description": "Each row of the import: where it is, its event id, and that event's outcome.",
          "content": {"application/json": {"schema": {
              "type": "object", "required": ["import", "unit", "uploaded_at", "counts", "rows"],
              "properties": {"import": {"type": "string"}, "unit": {"type": "string"},
                             "uploaded_at": {"type": "string"}, "counts": {"type": "object"},
                             "rows": {"type": "array", "items": {
                                 "type": "object", "required": ["sheet", "row", "event_id", "type", "outcome"],
                                 "properties": {"sheet": {"type": "string"}, "row": {"type": "integer"},
                                                "event_id": {"type": "string"}, "type": {"type": "string"},
                                                "outcome": {"type": "object"}}}}}}}}},
    **EVERY_REQUEST, 404: _problem(404),
}
IMPORT_EXTRA = {"security": SECURITY, "parameters": SIGNATURE_PARAMETERS, "requestBody": {
    "required": True, "description": "A filled-in template (.xlsx) in the form field `file`; at most 10 MB and "
                                     "20,000 rows (NQT_INGEST_MAX_UPLOAD_BYTES, NQT_INGEST_MAX_UPLOAD_ROWS).",
    "content": {"multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}}}}}


def post_events_extra(max_batch: int) -> dict:
    """What FastAPI cannot see of POST /v1/events: it reads the raw body (signatures cover it)."""
    batch = {"type": "array", "items": {"$ref": REF.format(model="CloudEvent")}, "minItems": 1, "maxItems": max_batch}
    body = {"oneOf": [{"$ref": REF.format(model="CloudEvent")}, batch]}
    return {"security": SECURITY, "parameters": SIGNATURE_PARAMETERS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}},
                            "description": f"One CloudEvent 1.0 (structured JSON), or an array of 1 to {max_batch} "
                                           "validated all-or-nothing."}}


GET_EVENT_EXTRA = {"security": SECURITY, "parameters": [
    {"name": "id", "in": "path", "required": True, "description": "the event's CloudEvents `id` (it may hold '/')",
     "schema": {"type": "string", "minLength": 1, "maxLength": 256}}]}


def event_schemas() -> dict[str, dict]:
    """`CloudEvent` (one of the inbound types, by `type`) and what it refers to."""
    union = Annotated[Union[tuple(EVENT_MODELS[t] for t in INBOUND_TYPES)], Field(discriminator="type")]
    schema = TypeAdapter(union).json_schema(ref_template=REF)
    defs = schema.pop("$defs")
    for event_type in INBOUND_TYPES:
        envelope = defs[EVENT_MODELS[event_type].__name__]
        # Attributes beyond the envelope's are CloudEvents extensions, with names of this form. The
        # envelope's own names fit the form too: excluded, or they would have to be scalars as well.
        own = "|".join(envelope["properties"])
        envelope["additionalProperties"] = False
        envelope["patternProperties"] = {f"^(?!({own})$){EXTENSION_NAME.pattern.removeprefix('^')}": EXTENSION_SCHEMA}
        envelope["maxProperties"] = len(envelope["properties"]) + MAX_EXTENSIONS
        envelope["properties"]["time"]["description"] = (
            "when it happened at the source: RFC 3339 with an offset; from before the term's start "
            "(NQT_INGEST_TIME_MARGIN_DAYS) to a few minutes past now (NQT_INGEST_MAX_CLOCK_SKEW_S)")
    return defs | {"CloudEvent": schema, "Problem": PROBLEM_SCHEMA}


def install(app: FastAPI) -> None:
    """Serve the schema FastAPI derives from the routes, completed with the shared components."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                 description="Departmental systems publish CloudEvents here (contract section 4).")
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(event_schemas())
            components["securitySchemes"] = {"unitKey": UNIT_KEY}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
