"""The AsyncAPI description of Kafka intake (`inbound.events`), served beside OpenAPI.
FastStream derives the channel from the broker's subscriber; this completes it with
what it cannot see: the record value is the same CloudEvent schema as the HTTP body,
and the record carries the three Standard Webhooks signature headers."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from services.ingest.openapi import REF, event_schemas

SIGNING = (
    "One structured-mode CloudEvent (JSON) per record, signed the Standard Webhooks way: "
    "`webhook-signature` is `v1,` and the base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<record value>` "
    "with the `whsec_` secret of one of the `source` unit's keys (`nqt keys issue UNIT --require-signature`). "
    "The timestamp must lie within 5 minutes of when the broker appended the record (the topic uses "
    "LogAppendTime), and a unit uses each webhook-id once. Anything else goes, bytes unchanged, to "
    "`inbound.events.dlq` with headers naming the error (`Unauthenticated` for signatures); nothing is published."
)
HEADERS = {
    "type": "object", "required": ["webhook-id", "webhook-timestamp", "webhook-signature"],
    "properties": {
        "webhook-id": {"type": "string", "minLength": 1, "description": "unique per record; a unit uses it once"},
        "webhook-timestamp": {"type": "string", "pattern": "^[0-9]+$", "description": "Unix seconds of signing"},
        "webhook-signature": {"type": "string", "pattern": "^v1,", "description": "`v1,<base64 HMAC-SHA256>`; "
                                                                               "several may be given, space-separated"},
    },
}


def document(broker: KafkaBroker, topic: str, *, title: str, version: str) -> dict:
    """The AsyncAPI 3.0 document of `topic`, as FastStream generates it, completed."""
    spec = AsyncAPI(broker, title=title, version=version, description=SIGNING,
                    schema_version="3.0.0").to_specification().to_jsonable()
    channels = {name: channel for name, channel in spec["channels"].items() if channel["address"] == topic}
    spec["channels"] = channels
    spec["operations"] = {name: operation for name, operation in spec["operations"].items()
                          if operation["channel"]["$ref"].rsplit("/", 1)[1] in channels}
    messages = {}
    for channel in channels.values():
        for message in channel["messages"].values():
            name = message["$ref"].rsplit("/", 1)[1]
            messages[name] = {"name": "CloudEvent", "title": "A CloudEvent of a departmental system",
                              "contentType": "application/cloudevents+json", "description": SIGNING,
                              "headers": HEADERS, "payload": {"$ref": REF.format(model="CloudEvent")}}
    schemas = {name: schema for name, schema in event_schemas().items() if name != "Problem"}
    spec["components"] = {"messages": messages, "schemas": schemas}
    return spec
